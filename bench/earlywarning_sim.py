"""Simulated referral histories with known truth, for measuring the early warning (bench/bench_earlywarning.py).

Each source sends a negative-binomial number of referrals a week (overdispersed: Var = mu + mu^2/k, with its own
k between 2 and 20) around `rate x season[w]`, where the practice-wide season has a spring peak, a late-summer
sports bump, a Christmas dip and 5% growth a year. A planted change multiplies the rate by (1 - drop) from its
week on. The truth (`mu`, `k`) is kept so the oracle can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEEKS_PER_MONTH = 52.0 / 12.0
BANDS = {"1-4": (1.0, 4.0), "4-8": (4.0, 8.0), "8-16": (8.0, 16.0), "16+": (16.0, 40.0)}


def season(n_weeks: int, *, start_week_of_year: int = 0, growth: float = 0.05) -> np.ndarray:
    """The practice-wide level of each week, mean about 1."""
    woy = (start_week_of_year + np.arange(n_weeks)) % 52
    level = 1.0 + 0.15 * np.sin(2 * np.pi * (woy - 4) / 52) + 0.07 * np.sin(4 * np.pi * (woy + 3) / 52)
    level = level * np.where(woy == 51, 0.55, 1.0) * np.where(woy == 0, 0.8, 1.0) * np.where(woy == 46, 0.85, 1.0)
    return level * (1 + growth) ** (np.arange(n_weeks) / 52.0)


@dataclass
class Population:
    counts: np.ndarray  # sources x weeks
    mu: np.ndarray  # the true mean of every cell
    usual: np.ndarray  # the true mean of every cell had nothing changed (what the oracle knows)
    k: np.ndarray  # the true NB size of each source, shape (sources, 1)
    per_month: np.ndarray  # the usual rate before any change, referrals a month
    band: np.ndarray  # band name per source
    drop_week: np.ndarray  # the week the change starts (n_weeks when none)
    drop: np.ndarray  # the relative drop (0 when none)


def simulate(
    rng: np.random.Generator,
    *,
    n_weeks: int,
    bands: list[str],
    levels: np.ndarray,
    drop_weeks: np.ndarray | None = None,
    drops: np.ndarray | None = None,
    dispersion: tuple[float, float] = (2.0, 20.0),
) -> Population:
    """One source per entry of `bands` (its usual volume drawn log-uniform in the band)."""
    n = len(bands)
    lows = np.array([BANDS[b][0] for b in bands])
    highs = np.array([BANDS[b][1] for b in bands])
    per_month = np.exp(rng.uniform(np.log(lows), np.log(highs)))
    k = np.exp(rng.uniform(np.log(dispersion[0]), np.log(dispersion[1]), size=n))[:, None]
    drop_weeks = np.full(n, n_weeks) if drop_weeks is None else np.asarray(drop_weeks)
    drops = np.zeros(n) if drops is None else np.asarray(drops, dtype=float)
    factor = np.where(np.arange(n_weeks)[None, :] >= drop_weeks[:, None], 1.0 - drops[:, None], 1.0)
    usual = (per_month / WEEKS_PER_MONTH)[:, None] * levels[None, :n_weeks]
    mu = usual * factor
    # NB as a gamma-Poisson mixture: each week's own rate is gamma(k, mu/k).
    lam = rng.gamma(np.broadcast_to(k, mu.shape), np.maximum(mu, 1e-12) / k)
    counts = rng.poisson(lam).astype(np.int32)
    return Population(counts, mu, usual, k, per_month, np.array(bands), drop_weeks, drops)
