"""Early warning: detection quality on simulated histories with planted drops, and the time of a design-scale scan.

`python -m bench bench_earlywarning` (or `make bench-earlywarning`). Deterministic from SEED. While iterating,
`python -m bench.bench_earlywarning --quick --stable 2500 --per-cell 400` runs in a quarter of the time (noisier),
and `--seed N` simulates another practice. What it does:
1. calibrates the thresholds on one population of stable sources (what Params' constants should be);
2. measures, on fresh populations, with the product's own Params: false alerts per 100 stable sources per quarter
   (13 weekly scans; a source counts once if any scan alerts), recall of planted 50/70/100% drops by usual volume
   at 4 and 8 weeks after the drop, and the median delay; side by side with the naive rule practices use
   ("last 30 days down 30% on the 30 days before", as 4 weeks on 4) and with an oracle running the same
   sequential test on the true rates, seasonality and dispersion, its thresholds set to the detector's own
   false-alert rate, kind by kind;
3. times a scan of 25,000 sources x 130 weeks built directly as a matrix, and (when bench/dataset.py's
   design-scale SQLite dataset is already built) the DB-backed `alert_scan` on it.
The figures are computed by `metrics.py`-style helpers below, tested on hand-made histories in
tests/insights/test_earlywarning_metrics.py.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from bench.common import table
from bench.earlywarning_sim import BANDS, season, simulate
from refloop.insights import earlywarning as ew

SEED = 7
N_STABLE_PER_BAND = 10_000  # per band, in each of the calibration and test populations
N_PER_CELL = 1000  # drop sources per (drop size, band) cell
DROPS = (0.5, 0.7, 1.0)
DROP_BANDS = ("4-8", "8-16", "16+")
QUARTER = 13  # weekly scans in a quarter
HORIZON = 13  # weeks after a drop that are scanned (delay is measured within these)
TARGET_FA = 1.0  # false alerts per 100 stable sources per quarter
CALIBRATION_FA = 0.85  # the calibration aims a little below the target, for the noise of a fresh population


# Metrics (pure functions of alarm matrices; tested on hand-made histories)


def false_alerts_per_100(alarms: np.ndarray) -> float:
    """alarms: stable sources x scans in one quarter (bool). A source with any alarm is one false alert."""
    if alarms.shape[0] == 0:
        return 0.0
    return 100.0 * float(alarms.any(axis=1).mean())


def detection_delay(alarms: np.ndarray) -> np.ndarray:
    """alarms: changed sources x scans, scan j being j+1 weeks after the change.

    Weeks to the first alarm (inf: never)."""
    hit = alarms.any(axis=1)
    return np.where(hit, alarms.argmax(axis=1) + 1.0, np.inf)


def recall_within(delay: np.ndarray, weeks: int) -> float:
    return float((delay <= weeks).mean()) if delay.size else float("nan")


def median_delay(delay: np.ndarray) -> float:
    found = delay[np.isfinite(delay)]
    return float(np.median(found)) if found.size else float("nan")


def threshold_for(max_statistic: np.ndarray, per_100: float) -> float:
    """The smallest threshold at which at most `per_100` of 100 sources' quarterly maxima reach it."""
    ordered = np.sort(max_statistic)[::-1]
    allowed = int(np.floor(per_100 / 100.0 * ordered.size))
    if allowed >= ordered.size:
        return 0.0
    return float(np.nextafter(ordered[allowed], np.inf))


# Running the detectors over simulated scans

DISPERSION = (5.0, 50.0)  # the NB size k of each simulated source is drawn log-uniform in this range
HEAVY_DISPERSION = (2.0, 20.0)  # the sensitivity check: much noisier sources


class World:
    """One simulated practice: its calendar, and a stable population whose totals give the practice-wide index."""

    def __init__(self, rng: np.random.Generator, params: ew.Params, dispersion=DISPERSION):
        self.params = params
        self.dispersion = dispersion
        self.window = params.window_weeks
        self.cohorts = [self.window + 1 + 13 * i for i in range(4)]  # drops in each season of the year
        self.n_weeks = self.cohorts[-1] + HORIZON
        self.levels = season(self.n_weeks, start_week_of_year=10)
        self.rng = rng
        self.stable = self.population([b for b in BANDS for _ in range(N_STABLE_PER_BAND)])
        self._index: dict[int, np.ndarray] = {}

    def population(self, bands: list[str], **changes):
        return simulate(self.rng, n_weeks=self.n_weeks, bands=bands, levels=self.levels, dispersion=self.dispersion,
                        **changes)  # fmt: skip

    def index(self, t: int) -> np.ndarray:
        """The practice-wide index the product would estimate at scan t, from the stable practice's totals."""
        if t not in self._index:
            window = self.stable.counts[:, t - self.window : t]
            first = ew.first_active_week(window)
            self._index[t] = ew.practice_index(window, established=first <= 4)
        return self._index[t]

    def detector(self, counts: np.ndarray, t: int) -> ew.ScanResult:
        return ew.scan(counts[:, t - self.window : t], params=self.params, index=self.index(t))

    def oracle(self, population, rows: np.ndarray, t: int) -> dict[int, np.ndarray]:
        m = self.params.monitor_weeks
        stats, _, _ = ew.sequential_statistics(
            population.counts[rows, t - m : t].astype(float), population.usual[rows, t - m : t], population.k[rows],
            self.params,
        )  # fmt: skip
        return stats

    @staticmethod
    def naive(counts: np.ndarray, t: int) -> np.ndarray:
        return ew.naive_rule(counts[:, :t].astype(float))

    @staticmethod
    def naive_score(counts: np.ndarray, t: int) -> np.ndarray:
        return ew.naive_score(counts[:, :t].astype(float))


def stable_statistics(world: World, population) -> dict:
    """Every stable source at each weekly scan of the last quarter (sources x scans): the detector's statistics,
    volume bands and alarms (with the Params in use), the oracle's statistics, the naive rule's alarms."""
    rows = np.arange(population.counts.shape[0])
    det, ora, det_alarm = {k: [] for k in ew.KIND_NAMES}, {k: [] for k in ew.KIND_NAMES}, {k: [] for k in ew.KIND_NAMES}
    bands, naive, naive_scores = [], [], []
    for t in range(world.n_weeks - QUARTER + 1, world.n_weeks + 1):
        result = world.detector(population.counts, t)
        oracle = world.oracle(population, rows, t)
        for kind in ew.KIND_NAMES:
            det[kind].append(result.statistics[kind])
            det_alarm[kind].append(result.statistics[kind] >= result.threshold[kind])
            ora[kind].append(oracle[kind])
        bands.append(result.band)
        naive.append(world.naive(population.counts, t))
        naive_scores.append(world.naive_score(population.counts, t))
    stack = lambda d: {k: np.stack(v, axis=1) for k, v in d.items()}  # noqa: E731
    return {"detector": stack(det), "alarms": stack(det_alarm), "oracle": stack(ora),
            "band": np.stack(bands, axis=1), "naive": np.stack(naive, axis=1),
            "naive_score": np.stack(naive_scores, axis=1)}  # fmt: skip


def calibrate(stats: dict[int, np.ndarray], bands: np.ndarray, n_bands: int, per_100: float,
              dormant_share: float = 0.3) -> dict[int, list[float]]:  # fmt: skip
    """Per volume band (as the detector estimates it at each scan), thresholds for slipping and dormant sharing
    the false-alert budget (their union is what counts), and for rising on a budget of its own."""
    out = {kind: [] for kind in ew.KIND_NAMES}
    for band in range(n_bands):
        inside = bands == band
        members = inside.any(axis=1)
        if not members.any():
            for kind in out:
                out[kind].append(out[kind][-1] if out[kind] else 10.0)
            continue
        maxima = {k: np.where(inside, s, -np.inf).max(axis=1)[members] for k, s in stats.items()}
        dormant = threshold_for(maxima[ew.DORMANT], per_100 * dormant_share)
        lo, hi = 0.0, 50.0
        for _ in range(50):
            mid = (lo + hi) / 2
            union = (maxima[ew.SLIPPING] >= mid) | (maxima[ew.DORMANT] >= dormant)
            lo, hi = (mid, hi) if 100.0 * union.mean() > per_100 else (lo, mid)
        up = lambda h: math.ceil(h * 100) / 100  # noqa: E731 - rounded up, so never past the budget
        out[ew.SLIPPING].append(up(hi))
        out[ew.DORMANT].append(up(dormant))
        out[ew.RISING].append(up(threshold_for(maxima[ew.RISING], per_100)))
    return out


def down(alarms_or_stats: dict[int, np.ndarray], thresholds: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """Slipping or dormant: from alarms, or from statistics and thresholds (broadcast per source)."""
    if thresholds is None:
        return alarms_or_stats[ew.SLIPPING] | alarms_or_stats[ew.DORMANT]
    s = alarms_or_stats
    return (s[ew.SLIPPING] >= thresholds[ew.SLIPPING]) | (s[ew.DORMANT] >= thresholds[ew.DORMANT])


def oracle_thresholds(test: dict, true_band: np.ndarray) -> dict[int, dict[str, float]]:
    """For each kind and true volume band, the oracle threshold giving the detector's own false-alert rate there."""
    out = {kind: {} for kind in ew.KIND_NAMES}
    for kind in ew.KIND_NAMES:
        for band in BANDS:
            mask = true_band == band
            rate = 100.0 * float(test["alarms"][kind][mask].any(axis=1).mean())
            out[kind][band] = threshold_for(test["oracle"][kind][mask].max(axis=1), rate)
    return out


def per_source(thresholds: dict[int, dict[str, float]], bands: np.ndarray) -> dict[int, np.ndarray]:
    return {kind: np.array([by_band[b] for b in bands])[:, None] for kind, by_band in thresholds.items()}


def drop_results(world: World, oracle_by_band: dict[int, dict[str, float]], naive_cut: float) -> list[dict]:
    """For every (drop, band) cell, the detection delays of the detector, the oracle, the naive rule as practices
    use it, and the naive rule with its cut tightened to the detector's false-alert rate."""
    cells = [(drop, band) for drop in DROPS for band in DROP_BANDS]
    bands = [band for _, band in cells for _ in range(N_PER_CELL)]
    drops = np.array([drop for drop, _ in cells for _ in range(N_PER_CELL)])
    cohort = np.arange(len(bands)) % len(world.cohorts)
    population = world.population(bands, drop_weeks=np.array(world.cohorts)[cohort], drops=drops)
    delays = {name: np.full(len(bands), np.inf) for name in ("detector", "oracle", "naive", "naive tuned")}
    for c, d in enumerate(world.cohorts):
        rows = np.flatnonzero(cohort == c)
        limits = {k: v[:, 0] for k, v in per_source(oracle_by_band, population.band[rows]).items()}
        alarms = {name: [] for name in delays}
        for t in range(d + 1, d + HORIZON + 1):
            result = world.detector(population.counts[rows], t)
            alarms["detector"].append(down(result.statistics, result.threshold))
            alarms["oracle"].append(down(world.oracle(population, rows, t), limits))
            alarms["naive"].append(world.naive(population.counts[rows], t))
            alarms["naive tuned"].append(world.naive_score(population.counts[rows], t) >= naive_cut)
        for name, columns in alarms.items():
            delays[name][rows] = detection_delay(np.stack(columns, axis=1))
    return [
        {"drop": drop, "band": band, **{n: v[(drops == drop) & (population.band == band)] for n, v in delays.items()}}
        for drop, band in cells
    ]


def quality(params: ew.Params, dispersion=DISPERSION) -> tuple[list[str], dict]:
    rng = np.random.default_rng(SEED)
    lines = []
    world = World(rng, params, dispersion)
    n_bands = len(params.volume_edges) + 1
    cal = stable_statistics(world, world.stable)
    suggested = calibrate(cal["detector"], cal["band"], n_bands, CALIBRATION_FA)
    lines.append(f"simulated sources: NB weekly counts, size k log-uniform in {dispersion}, seasonality, growth; "
                 f"{N_STABLE_PER_BAND} stable sources per band to calibrate, as many fresh ones to test")  # fmt: skip
    edges = [f"{e:g}" for e in params.volume_edges]
    names = [f"<{edges[0]}", *(f"{lo}-{hi}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)), f"{edges[-1]}+"]
    lines.append(f"thresholds calibrated here (bands {', '.join(names)} a month): "
                 + "; ".join(f"{ew.KIND_NAMES[k]} {v}" for k, v in suggested.items()))  # fmt: skip
    lines.append(f"thresholds in use (Params): slipping {params.slipping_thresholds}; "
                 f"dormant {params.dormant_thresholds}; rising {params.rising_thresholds}")  # fmt: skip
    # A fresh stable population (same practice), so the false-alert rate is not measured on what set the thresholds.
    fresh = world.population(list(world.stable.band))
    test = stable_statistics(world, fresh)
    oracle_by_band = oracle_thresholds(test, fresh.band)
    ora_alarms = down(test["oracle"], per_source(oracle_by_band, fresh.band))
    det_alarms = down(test["alarms"])
    fa_rows = []
    for band in [*BANDS, "all"]:
        mask = fresh.band == band if band != "all" else np.ones(len(fresh.band), dtype=bool)
        fa_rows.append([
            band,
            f"{false_alerts_per_100(det_alarms[mask]):.2f}",
            f"{false_alerts_per_100(ora_alarms[mask]):.2f}",
            f"{false_alerts_per_100(test['naive'][mask]):.1f}",
            f"{false_alerts_per_100(test['alarms'][ew.RISING][mask]):.2f}",
        ])  # fmt: skip
    det_fa = false_alerts_per_100(det_alarms)
    lines.append("")
    lines.append("false alerts per 100 stable sources per quarter (13 weekly scans; target <= 1), by volume a month")
    lines.append(table(fa_rows, ["volume", "detector", "oracle", "naive", "detector rising"]))

    # The naive rule held to the detector's false-alert rate: how far must the last 4 weeks fall before it may speak?
    # (Among sources of 4 or more a month, as in the drop cells: below that a 4-week silence is too common.)
    four_plus = fresh.band != "1-4"
    det_fa_4 = false_alerts_per_100(det_alarms[four_plus])
    naive_cut = threshold_for(test["naive_score"][four_plus].max(axis=1), det_fa_4)
    lines.append(f"naive rule held to the detector's {det_fa_4:.2f} false alerts per 100 per quarter among sources of "
                 + (f"4+ a month: the last 4 weeks down {naive_cut:.0%} or more on the 4 before" if naive_cut <= 1
                    else "4+ a month: no cut gets there (even 4 silent weeks are more common)"))  # fmt: skip
    results = drop_results(world, oracle_by_band, naive_cut)
    rows, misses = [], []
    for r in results:
        row = [f"{int(r['drop'] * 100)}%", r["band"]]
        for weeks in (4, 8):
            det, ora, nai, tuned = (recall_within(r[n], weeks) for n in ("detector", "oracle", "naive", "naive tuned"))
            row += [f"{det:.2f}", f"{ora:.2f}", f"{nai:.2f}", f"{tuned:.2f}"]
            if det < ora - 0.05:
                misses.append(f"{int(r['drop'] * 100)}% at {r['band']}/month within {weeks} weeks: "
                              f"detector {det:.2f} vs oracle {ora:.2f}")  # fmt: skip
        row += [f"{median_delay(r[n]):.0f}" for n in ("detector", "oracle", "naive")]
        rows.append(row)
    lines.append("")
    lines.append(f"recall of planted drops ({N_PER_CELL} sources a cell, drops in four seasons) within 4 and 8 weeks; "
                 f"median delay in weeks among those found within {HORIZON} weeks")  # fmt: skip
    header = ["drop", "volume", "det@4", "oracle@4", "naive@4", "tuned@4", "det@8", "oracle@8", "naive@8", "tuned@8",
              "delay det", "delay oracle", "delay naive"]  # fmt: skip
    lines.append(table(rows, header))
    every = {n: np.concatenate([r[n] for r in results]) for n in ("detector", "oracle", "naive", "naive tuned")}
    lines.append("median detection delay, all planted drops found within 13 weeks: "
                 + ", ".join(f"{n} {median_delay(v) * 7:.0f} days" for n, v in every.items()))  # fmt: skip
    big = np.concatenate([r["detector"] for r in results if r["drop"] >= 0.7 and r["band"] == "16+"])
    stops = np.concatenate([r["detector"] for r in results if r["drop"] == 1.0])
    checks = [
        (f"false alerts {det_fa:.2f} per 100 stable sources per quarter <= {TARGET_FA}", det_fa <= TARGET_FA),
        (f"recall within 0.05 of the oracle in every cell ({len(misses)} cells miss)", not misses),
        (f"70%+ drops at 16+/month found within 8 weeks: {recall_within(big, 8):.3f} >= 0.9",
         recall_within(big, 8) >= 0.9),
        (f"sources that stop (4+/month) found within 8 weeks: {recall_within(stops, 8):.3f} >= 0.98",
         recall_within(stops, 8) >= 0.98),
        (f"margin over the naive rule: as used ({false_alerts_per_100(test['naive']):.0f} false alerts per 100 per "
         f"quarter) it finds {recall_within(every['naive'], 8):.2f} of all drops in 8 weeks; held to the detector's "
         f"false-alert rate {recall_within(every['naive tuned'], 8):.2f}, against the detector's "
         f"{recall_within(every['detector'], 8):.2f}",
         recall_within(every["detector"], 8) >= recall_within(every["naive tuned"], 8) + 0.1),
    ]  # fmt: skip
    lines.append("")
    lines.append("targets:")
    lines += [f"  [{'met' if ok else 'MISSED'}] {text}" for text, ok in checks]
    lines += [f"    miss: {m}" for m in misses]
    return lines, {"false_alerts": det_fa, "misses": misses, "checks": checks, "suggested": suggested}


def ablation(params: ew.Params, band: str = "16+", drop: float = 0.5, weeks: int = 8) -> list[str]:
    """Where the detector's gap to the oracle comes from, in one cell: the same slipping test given the true
    overdispersion k, the true usual rate, or both, each calibrated to the same false-alert rate."""
    rng = np.random.default_rng(SEED + 2)
    world = World(rng, params)
    m = params.monitor_weeks
    stable = world.population([band] * N_PER_CELL * 4)
    cohort = np.arange(N_PER_CELL) % len(world.cohorts)
    changed = world.population([band] * N_PER_CELL, drop_weeks=np.array(world.cohorts)[cohort],
                               drops=np.full(N_PER_CELL, drop))  # fmt: skip

    def statistic(population, rows, t, knows_k, knows_rate):
        counts = population.counts[rows, t - world.window : t].astype(float)
        index = world.index(t)
        result = ew.scan(counts, params=params, index=index)
        _, _, a, b = ew.usual_rates(counts, index, ew.first_active_week(counts), params)
        k = population.k[rows, 0] if knows_k else result.dispersion
        phi_sd = None if knows_k else result.dispersion_sd
        if knows_rate:  # a posterior so sharp it is the truth
            b = np.full(len(rows), 1e7)
            a = population.usual[rows, t - 1] / index[-1] * b
        return ew.segment_evidence(counts[:, -m:], index[-m:], a, b, k, ew.alternatives(ew.SLIPPING, params),
                                   phi_sd=phi_sd)[0]  # fmt: skip

    rows_out = []
    for label, knows_k, knows_rate in (("detector", False, False), ("knowing k", True, False),
                                       ("knowing the rate", False, True), ("knowing both", True, True)):  # fmt: skip
        everyone = np.arange(stable.counts.shape[0])
        maxima = np.max([statistic(stable, everyone, t, knows_k, knows_rate)
                         for t in range(world.n_weeks - QUARTER + 1, world.n_weeks + 1)], axis=0)  # fmt: skip
        h = threshold_for(maxima, CALIBRATION_FA)
        found = np.zeros(N_PER_CELL, dtype=bool)
        for c, d in enumerate(world.cohorts):
            rows = np.flatnonzero(cohort == c)
            for t in range(d + 1, d + weeks + 1):
                found[rows] |= statistic(changed, rows, t, knows_k, knows_rate) >= h
        rows_out.append([label, f"{h:.2f}", f"{found.mean():.2f}"])
    return [f"where the gap comes from: {int(drop * 100)}% drops at {band}/month within {weeks} weeks, slipping test "
            f"alone, each variant at {CALIBRATION_FA} false alerts per 100 per quarter",
            table(rows_out, ["variant", "threshold", "recall"])]  # fmt: skip


def scan_time(n_sources: int = 25_000) -> list[str]:
    """The detector alone on a design-scale matrix (25,000 sources x 130 weeks), as the scan runs it."""
    rng = np.random.default_rng(SEED + 1)
    params = ew.DEFAULT
    weeks = params.window_weeks
    rates = np.exp(rng.uniform(np.log(0.05), np.log(10.0), size=n_sources))[:, None]
    counts = rng.poisson(rates * season(weeks)[None, :]).astype(float)
    start = time.perf_counter()
    result = ew.scan(counts, params=params)
    seconds = time.perf_counter() - start
    found = {name: int((result.kind == kind).sum()) for kind, name in ew.KIND_NAMES.items()}
    return [f"detector on {n_sources:,} sources x {weeks} weeks (matrix built directly): {seconds:.2f} s; {found}"]


def db_scan_time() -> list[str]:
    """alert_scan (read counts, detect, no writes) on bench/dataset.py's design-scale SQLite dataset, if built."""
    import subprocess

    from bench import dataset
    from bench.common import ROOT, leg_env

    env = leg_env("sqlite", dataset.NAME)
    if dataset._marker("sqlite", env) is None:
        return ["DB-backed scan: skipped (build the design-scale dataset with `python -m bench.dataset` first)"]
    result = subprocess.run([sys.executable, "-m", "bench.bench_earlywarning", "--db-leg"], env=env, cwd=ROOT,
                            capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        return [f"DB-backed scan failed: {result.stderr.strip().splitlines()[-1:]}"]
    return [result.stdout.strip()]


def _db_leg() -> None:
    import django

    django.setup()
    from refloop.insights.scan import alert_scan

    start = time.perf_counter()
    outcome = alert_scan(save=False)
    seconds = time.perf_counter() - start
    print(f"DB-backed alert_scan (SQLite, design-scale dataset, no writes): {seconds:.2f} s for "
          f"{outcome.sources_judged:,} judged of {outcome.sources_read:,} sources read; "
          f"{len(outcome.findings)} alerts")  # fmt: skip


def _set_sizes(seed: int, stable: int, per_cell: int) -> None:
    global SEED, N_STABLE_PER_BAND, N_PER_CELL
    SEED, N_STABLE_PER_BAND, N_PER_CELL = seed, stable, per_cell


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db-leg", action="store_true")
    parser.add_argument("--quick", action="store_true", help="skip the DB-backed timing")
    parser.add_argument("--seed", type=int, default=SEED, help="another simulated practice (the figures vary by seed)")
    parser.add_argument("--stable", type=int, default=N_STABLE_PER_BAND, help="stable sources a band (fewer: faster)")
    parser.add_argument("--per-cell", type=int, default=N_PER_CELL, help="drop sources per cell (smaller: faster)")
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
    if args.db_leg:
        _db_leg()
        return
    _set_sizes(args.seed, args.stable, args.per_cell)
    lines, _ = quality(ew.DEFAULT)
    print("\n".join(lines), flush=True)
    print()
    print("\n".join(ablation(ew.DEFAULT)), flush=True)
    print()
    print("\n".join(scan_time()), flush=True)
    if not args.quick:
        print("\n".join(db_scan_time()), flush=True)


if __name__ == "__main__":
    main()
