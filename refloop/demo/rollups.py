"""Demo step: the dashboard's rollups, rebuilt once the referrals are in (the history is written in bulk, which
bypasses the model saves that keep the rollups current)."""

from __future__ import annotations

from refloop.demo import DemoContext
from refloop.insights.rollups import rollup_rebuild


def build(ctx: DemoContext) -> None:
    ctx.count("rollup members", rollup_rebuild())
