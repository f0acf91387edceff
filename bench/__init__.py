"""Benchmarks: timed scenarios at the scale in DESIGN.md, printing a table. Run with `make bench`.

Timings live here and never in the test suite, where a slow CI machine would make them flaky.
"""
