"""Early warning of slipping, dormant and rising referral sources: the statistics, in plain NumPy (no Django).

The model. A source's referrals in week w are negative-binomial with mean `usual x index[w]` (Var = mu +
mu^2 / k): `usual` is the source's own deseasonalised weekly rate from its history before the monitored weeks
(up to two years; a gamma posterior, shrunk toward the peer mean so a short history does not swing wildly),
`index` the practice-wide level of each week (season, holidays, growth) from every established source at once,
and `k` each source's overdispersion, its own moment estimate shrunk toward the pooled one (empirical Bayes, the
spread between sources weighted by each estimate's precision), with the uncertainty that shrinkage leaves.

The tests, over the last `monitor_weeks` (26):
- slipping (rate now anywhere from 0 to 0.5 x usual, every drop size from 50% to 100% equally likely) and rising
  (2 x usual): a Bayes factor for "the rate changed at some week of the window" against "it did not". For each
  possible change week s, the referrals since s are compared with the usual rate with that rate integrated out
  over its gamma posterior (the baseline plus the monitored weeks before s), so the usual rate's own 5-10%
  estimation error, shared by every recent week, is not read as evidence; the likelihood ratio is scaled for the
  week-to-week overdispersion and averaged over s (uniform) and over the drop size. Averaging, where a best-of
  (GLR) statistic would take the largest, does not pay for the many readings of a steady source that look good
  by chance. Because k is only estimated (two years of counts pin it to about +-10% on the variance of a busy
  source), the evidence is averaged over k's posterior in the one way that keeps its meaning: minus the log of
  the posterior mean of exp(-evidence), the chance a steady source would show this much. "Since" is the most
  likely change week;
- dormant: Page's NB CUSUM against rate 0, whose statistic is exactly -log P(so long a silence), so "silent far
  beyond the usual interval" is a sequential test too; it restarts at each referral.
With the rates known, the NB CUSUM is the optimal sequential test at a given alternative, and the bench's oracle
runs it on the true rates (at slipping_rhos, 0.5 and 0.2). Thresholds by usual volume are calibrated by
simulation (bench/bench_earlywarning.py) so that stable sources raise at most one false alert per 100 sources per
quarter; small sources therefore need more weeks of evidence, which is the honest answer rather than crying wolf.

Everything is vectorised over sources: a scan of 25,000 sources x 130 weeks is a few array passes (about 1-2 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

WEEKS_PER_MONTH = 52.0 / 12.0

NONE, SLIPPING, DORMANT, RISING = 0, 1, 2, 3
KIND_NAMES = {SLIPPING: "slipping", DORMANT: "dormant", RISING: "rising"}


@dataclass(frozen=True)
class Params:
    baseline_weeks: int = 104  # the usual rate comes from (up to) this much history before the monitored weeks
    monitor_weeks: int = 26  # the tests run over these most recent weeks
    min_baseline_weeks: int = 26  # a source needs this much history before it is judged
    min_usual_per_month: float = 1.0  # sparser sources say too little to be judged
    prior_weeks: float = 4.0  # strength of the gamma prior toward the peer mean, in weeks of data
    # Slipping means the rate is now half of usual or less. The CUSUM (the bench's oracle) runs at the two rates
    # named here; the detector's evidence averages over every rate from 0 to the largest, equally likely, at
    # `slipping_points` midpoints (a drop of 50% to 100%, no size favoured). Rising: 2 x usual.
    slipping_rhos: tuple[float, ...] = (0.5, 0.2)
    slipping_points: int = 10
    rising_rhos: tuple[float, ...] = (2.0,)
    # Thresholds on the evidence by usual volume (referrals a month: under 4, 4-8, 8-16, 16-24, 24 and more),
    # calibrated by `python -m bench bench_earlywarning` for at most 1 false alert per 100 stable sources per
    # quarter in each band (slipping and dormant share that budget; rising has its own).
    volume_edges: tuple[float, ...] = (4.0, 8.0, 16.0, 24.0)
    slipping_thresholds: tuple[float, ...] = (4.38, 4.01, 3.43, 3.17, 2.5)
    dormant_thresholds: tuple[float, ...] = (8.87, 8.25, 7.67, 7.6, 6.76)
    rising_thresholds: tuple[float, ...] = (2.51, 3.16, 3.49, 4.04, 3.79)
    resolve_fraction: float = 0.5  # an open alert resolves once its statistic falls below this share of the threshold
    min_dispersion: float = 0.5  # bounds on the pooled NB size k
    max_dispersion: float = 1000.0

    @property
    def window_weeks(self) -> int:
        return self.baseline_weeks + self.monitor_weeks


DEFAULT = Params()


def nb_llr(counts: np.ndarray, mu: np.ndarray, k: np.ndarray | float, rho: float) -> np.ndarray:
    """log P(counts | mean rho*mu) - log P(counts | mean mu) for negative-binomial counts of size k.

    For rho = 0 a week with any referral rules the alternative out (-inf) and a silent week scores
    -log P(0 | mu) = k log(1 + mu/k): summed over a silence, the surprise of that silence.
    """
    counts = np.asarray(counts, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-9)
    k = np.asarray(k, dtype=float)
    if rho == 0.0:
        return np.where(counts > 0, -np.inf, k * np.log1p(mu / k))
    return counts * np.log(rho) + (counts + k) * (np.log(k + mu) - np.log(k + rho * mu))


def cusum(llr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Page's CUSUM along the last axis of `llr` (sources x weeks).

    Returns the statistic after the last week, the week where its current run began (the week after its last
    reset: the change point "since"), and the maximum the statistic reached over the weeks (for back-tests).
    """
    n_sources, n_weeks = llr.shape
    stat = np.zeros(n_sources)
    start = np.zeros(n_sources, dtype=np.int64)
    peak = np.zeros(n_sources)
    for week in range(n_weeks):
        stat = np.maximum(stat + llr[:, week], 0.0)
        start = np.where(stat <= 0.0, week + 1, start)
        np.maximum(peak, stat, out=peak)
    return stat, start, peak


def first_active_week(counts: np.ndarray) -> np.ndarray:
    """The first week with a referral (n_weeks for a source with none)."""
    seen = counts > 0
    return np.where(seen.any(axis=1), seen.argmax(axis=1), counts.shape[1])


def practice_index(counts: np.ndarray, *, established: np.ndarray | None = None) -> np.ndarray:
    """Each week's practice-wide level relative to the window's average (1.0 = an average week).

    From the sources active since the window began (new sources would read as practice growth). Each week's
    deviation from 1 is shrunk by the Poisson noise of that week's total (positive-part James-Stein, week by
    week): a small practice's index does not chase its own noise, and a real holiday dip is kept whole.
    """
    rows = counts if established is None else counts[established]
    totals = rows.sum(axis=0).astype(float)
    mean = totals.mean() if totals.size else 0.0
    if mean <= 0:
        return np.ones(counts.shape[1])
    deviation = totals / mean - 1.0
    noise = 1.0 / mean
    weight = np.clip(1.0 - noise / np.maximum(deviation**2, 1e-12), 0.0, 1.0)
    return np.maximum(1.0 + deviation * weight, 0.05)


def dispersion_posterior(
    counts: np.ndarray, expected: np.ndarray, mask: np.ndarray, params: Params = DEFAULT
) -> tuple[np.ndarray, np.ndarray]:
    """Each source's NB size k: its own moment estimate of 1/k, shrunk toward the pooled one by its noise; and the
    standard deviation of 1/k left after that (the posterior's, normal approximation).

    E[(c - e)^2 - c] = e^2 / k for NB counts of mean e, so sum((c - e)^2 - c) / sum(e^2) estimates 1/k; its
    sampling variance is about 2 sum(e^2 (1 + e/k)^2) / sum(e^2)^2 (large for a small source, which then
    leans on the pool). The spread of the true 1/k between sources is estimated by moments too (empirical Bayes,
    DerSimonian-Laird: each source's estimate weighted by its precision). With the spread s and a source's noise v,
    the shrunk estimate keeps s / (s + v) of its own deviation and is uncertain by s v / (s + v): two years of weekly
    counts pin 1/k down only to about +-0.03, which for a source of 6 a week is +-10% on its variance.
    """
    c, e = counts * mask, expected * mask
    e2 = e * e
    scale = e2.sum(axis=1)
    ok = scale > 0
    residual = c - e
    excess = (residual * residual - c).sum(axis=1)
    safe = np.where(ok, scale, 1.0)
    raw = np.where(ok, excess / safe, 0.0)
    pooled_phi = float(excess.sum()) / max(float(scale.sum()), 1e-12)
    pooled_phi = float(np.clip(pooled_phi, 1.0 / params.max_dispersion, 1.0 / params.min_dispersion))
    spread_e = 1 + e * pooled_phi
    noise = np.where(ok, 2.0 * (e2 * spread_e * spread_e).sum(axis=1) / (safe * safe), np.inf)
    finite = ok & np.isfinite(noise) & (noise > 0)
    spread = _between_spread(raw[finite], noise[finite])
    weight = np.where(finite, spread / (spread + noise), 0.0)
    phi = pooled_phi + weight * (raw - pooled_phi)
    known = np.where(finite, noise, 1.0)
    variance = np.where(finite, spread * known / np.maximum(spread + known, 1e-300), spread)
    return 1.0 / np.clip(phi, 1.0 / params.max_dispersion, 1.0 / params.min_dispersion), np.sqrt(variance)


def _between_spread(raw: np.ndarray, noise: np.ndarray) -> float:
    """The variance of the true values behind noisy estimates `raw` of sampling variances `noise` (DerSimonian-Laird).

    Each estimate is weighted by its precision, so a practice's many small sources (whose estimates are mostly
    noise) do not swamp the spread the large ones show plainly: an unweighted var(raw) - mean(noise) came out 0
    whenever small sources were present, and every source then got the pooled k.
    """
    if raw.size < 2:
        return 0.0
    w = 1.0 / noise
    centre = float((w * raw).sum() / w.sum())
    q = float((w * (raw - centre) ** 2).sum())
    scale = float(w.sum() - (w * w).sum() / w.sum())
    return max((q - (raw.size - 1)) / scale, 0.0) if scale > 0 else 0.0


@dataclass
class ScanResult:
    """Per-source arrays from one scan (index i is row i of the counts). Week numbers are column numbers."""

    usual: np.ndarray  # deseasonalised weekly rate before the monitored weeks
    judged: np.ndarray  # bool: enough history and volume to be judged
    kind: np.ndarray  # NONE / SLIPPING / DORMANT / RISING
    statistic: np.ndarray  # the evidence of the kind found
    statistics: dict[int, np.ndarray]  # per kind, the evidence after the last week (slipping/rising: log Bayes
    # factor; dormant: the silence CUSUM)
    threshold: dict[int, np.ndarray]  # per kind, each source's threshold (by its usual volume)
    band: np.ndarray  # volume band of each source (0 = under the first edge)
    since: np.ndarray  # week column where the change began (for the kind found)
    ratio: np.ndarray  # actual / expected since then (0.3 = running at 30% of usual)
    confidence: np.ndarray
    index: np.ndarray  # practice-wide level per week
    dispersion: np.ndarray  # NB size k per source
    dispersion_sd: np.ndarray  # posterior sd of 1/k per source (how well k is known)
    first_monitored: int  # first column of the monitored weeks

    def expected(self, rows: np.ndarray | slice | int) -> np.ndarray:
        return np.outer(np.atleast_1d(self.usual[rows]), self.index)

    def still_changed(self, kind: int, resolve_fraction: float) -> np.ndarray:
        """Sources whose open alert of `kind` should stay open: the statistic has not fallen back enough."""
        return self.judged & (self.statistics[kind] >= resolve_fraction * self.threshold[kind])


def usual_rates(
    counts: np.ndarray, index: np.ndarray, first: np.ndarray, params: Params = DEFAULT
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each source's deseasonalised weekly rate over the baseline weeks and the weeks of history behind it,
    with the gamma posterior of that rate (shape a, rate b: mean a/b) that the tests integrate over."""
    n_weeks = counts.shape[1]
    base_end = n_weeks - params.monitor_weeks
    base_start = max(base_end - params.baseline_weeks, 0)
    cols = np.arange(base_start, base_end)
    active = cols[None, :] >= first[:, None]
    exposure = (index[base_start:base_end][None, :] * active).sum(axis=1)
    total = (counts[:, base_start:base_end] * active).sum(axis=1).astype(float)
    # A first referral inside the baseline is what made the source visible: not evidence of its rate.
    total = np.where((first > base_start) & (first < base_end), np.maximum(total - 1.0, 0.0), total)
    weeks_active = active.sum(axis=1)
    enough = weeks_active >= params.min_baseline_weeks
    peer = total[enough].sum() / exposure[enough].sum() if enough.any() and exposure[enough].sum() > 0 else 0.0
    prior_a, prior_b = peer * params.prior_weeks, params.prior_weeks
    a, b = total + prior_a, exposure + prior_b
    return a / b, weeks_active, a, b


def scan(
    counts: np.ndarray,
    *,
    params: Params = DEFAULT,
    index: np.ndarray | None = None,
    first: np.ndarray | None = None,
) -> ScanResult:
    """Judge every source (row of `counts`, sources x weeks, the last column the most recent full week).

    `index` is the practice-wide level per week (estimated from `counts` when None, in two passes: the second
    leaves out the sources the first pass found changed, so a few big slipping sources do not drag the level
    down and hide each other). `first` is each source's first active week (from the counts when None).
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] < params.monitor_weeks + params.min_baseline_weeks:
        raise ValueError(
            f"need sources x weeks counts with at least {params.monitor_weeks + params.min_baseline_weeks} weeks"
        )
    if first is None:
        first = first_active_week(counts)
    if index is None:
        established = first <= 4
        result = _scan(counts, practice_index(counts, established=established), first, params)
        steady = established & (result.kind == NONE)
        return _scan(counts, practice_index(counts, established=steady if steady.any() else established), first, params)
    return _scan(counts, np.asarray(index, dtype=float), first, params)


def _scan(counts: np.ndarray, index: np.ndarray, first: np.ndarray, params: Params) -> ScanResult:
    n_sources, n_weeks = counts.shape
    mon = n_weeks - params.monitor_weeks
    usual, weeks_active, post_a, post_b = usual_rates(counts, index, first, params)
    judged = (weeks_active >= params.min_baseline_weeks) & (usual * WEEKS_PER_MONTH >= params.min_usual_per_month)
    expected = usual[:, None] * index[None, :]
    base = slice(max(mon - params.baseline_weeks, 0), mon)
    active = (np.arange(n_weeks)[None, :] >= first[:, None]) & judged[:, None]
    k, phi_sd = dispersion_posterior(counts[:, base], expected[:, base], active[:, base], params)
    stats, starts, _ = sequential_statistics(counts[:, mon:], expected[:, mon:], k[:, None], params, kinds=(DORMANT,))
    bounds = (1.0 / params.max_dispersion, 1.0 / params.min_dispersion)
    for kind in (SLIPPING, RISING):
        stats[kind], starts[kind] = segment_evidence(
            counts[:, mon:], index[mon:], post_a, post_b, k, alternatives(kind, params), phi_sd=phi_sd, bounds=bounds
        )
    for kind in stats:
        stats[kind] = np.where(judged, stats[kind], 0.0)
    band = volume_band(usual, params)
    threshold = {
        SLIPPING: np.asarray(params.slipping_thresholds)[band],
        DORMANT: np.asarray(params.dormant_thresholds)[band],
        RISING: np.asarray(params.rising_thresholds)[band],
    }
    kind = np.full(n_sources, NONE)
    # Dormant first (a silence is the clearest message), then slipping, then rising.
    for candidate in (RISING, SLIPPING, DORMANT):
        kind = np.where(stats[candidate] >= threshold[candidate], candidate, kind)
    statistic = np.zeros(n_sources)
    since = np.full(n_sources, n_weeks)
    for candidate in (SLIPPING, DORMANT, RISING):
        chosen = kind == candidate
        statistic = np.where(chosen, stats[candidate], statistic)
        since = np.where(chosen, mon + starts[candidate], since)
    # The ratio since the change: observed over expected from `since` to the end.
    cols = np.arange(n_weeks)[None, :]
    after = cols >= np.minimum(since, n_weeks - 1)[:, None]
    ratio = (counts * after).sum(axis=1) / np.maximum((expected * after).sum(axis=1), 1e-9)
    ratio = np.where(kind == NONE, 1.0, ratio)
    chosen_threshold = np.choose(np.clip(kind - 1, 0, 2), [threshold[SLIPPING], threshold[DORMANT], threshold[RISING]])
    confidence = posterior(statistic, chosen_threshold)
    return ScanResult(
        usual=usual,
        judged=judged,
        kind=kind,
        statistic=statistic,
        statistics=stats,
        threshold=threshold,
        band=band,
        since=since,
        ratio=ratio,
        confidence=np.where(kind == NONE, 0.0, confidence),
        index=index,
        dispersion=k,
        dispersion_sd=phi_sd,
        first_monitored=mon,
    )


def sequential_statistics(
    actual: np.ndarray,
    expected: np.ndarray,
    k: np.ndarray | float,
    params: Params = DEFAULT,
    kinds: tuple[int, ...] = (SLIPPING, DORMANT, RISING),
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], dict[int, np.ndarray]]:
    """The NB CUSUM of each kind over the monitored weeks (the best of its alternatives): statistic, run start, peak.

    With the rate known this is the optimal sequential test: the bench's oracle runs it on the true rates. The
    detector runs it for silences (dormant), whose evidence is plain: -log P(this long without a referral).
    """
    n_sources = actual.shape[0]
    stats, starts, peaks = {}, {}, {}
    alternatives = {SLIPPING: params.slipping_rhos, DORMANT: (0.0,), RISING: params.rising_rhos}
    for kind in kinds:
        rhos = alternatives[kind]
        stat, start, peak = np.zeros(n_sources), np.full(n_sources, actual.shape[1]), np.zeros(n_sources)
        for rho in rhos:
            s, b, p = cusum(nb_llr(actual, expected, k, rho))
            better = s > stat
            stat, start, peak = np.where(better, s, stat), np.where(better, b, start), np.maximum(peak, p)
        stats[kind], starts[kind], peaks[kind] = stat, start, peak
    return stats, starts, peaks


def alternatives(kind: int, params: Params = DEFAULT) -> np.ndarray:
    """The rates, as multiples of usual, that a kind's evidence averages over (equal weights).

    Slipping: the midpoints of `slipping_points` equal steps from 0 to the largest of `slipping_rhos` (0.5), so a
    drop of anything from 50% to 100% counts, no size favoured. Rising: `rising_rhos` as they are.
    """
    if kind == SLIPPING:
        top = max(params.slipping_rhos)
        return (np.arange(params.slipping_points) + 0.5) / params.slipping_points * top
    if kind == RISING:
        return np.asarray(params.rising_rhos, dtype=float)
    raise ValueError(f"no alternatives for kind {kind}")


# Three-point Gauss-Hermite rule for a normal: nodes at the mean and +-sqrt(3) sd, weights 2/3, 1/6, 1/6.
_NORMAL_NODES = ((0.0, 2.0 / 3.0), (3.0**0.5, 1.0 / 6.0), (-(3.0**0.5), 1.0 / 6.0))


def segment_evidence(
    actual: np.ndarray,
    index: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    k: np.ndarray,
    rhos: np.ndarray | tuple[float, ...],
    *,
    phi_sd: np.ndarray | None = None,
    bounds: tuple[float, float] = (1.0 / DEFAULT.max_dispersion, 1.0 / DEFAULT.min_dispersion),
) -> tuple[np.ndarray, np.ndarray]:
    """The evidence (log Bayes factor) that the rate changed to rho x usual at some week of the monitored window.

    For a change at week s, the referrals C since s over the practice-wide exposure E since s are compared with
    the usual rate, which is only estimated: its gamma posterior (a, b) from the baseline, joined by the monitored
    weeks before s (they are the usual rate's too). The rate is integrated out, so a 5% estimation error shared by
    every recent week is not read as evidence:
        LLR(s, rho) = a_s log((b_s + E) / (b_s + rho E)) + C log(rho (b_s + E) / (b_s + rho E)),
    divided by the quasi-likelihood dispersion q = 1 + mean weekly rate / k for the week-to-week overdispersion.
    The Bayes factor averages the likelihood ratio over the change week (uniform over the window) and over `rhos`
    (equal weights): log mean_s mean_rho exp(LLR / q). Averaging, rather than taking the best s and rho, counts
    every reading of the window that supports a change, and does not pay for the many that a steady source makes
    look good by chance.
    k is estimated, and a source whose variance is underestimated reads noise as evidence. With `phi_sd` (the
    posterior sd of 1/k) the evidence E is replaced by -log of the posterior average of exp(-E) over 1/k (three
    Gauss-Hermite nodes, kept within `bounds`): the chance that a steady source shows this much, averaged over what
    its overdispersion may be, so a source whose k is poorly known must show more. Without it, k is taken as known.
    Returns the evidence (0 when none is positive) and the most likely change week (n_weeks when none).
    """
    actual = np.asarray(actual, dtype=float)
    n_sources, n_weeks = actual.shape
    counts_since = np.cumsum(actual[:, ::-1], axis=1)[:, ::-1]  # C[s]: referrals from week s to the end
    exposure_since = np.cumsum(np.asarray(index, dtype=float)[::-1])[::-1][None, :]  # E[s]
    a = a[:, None] + (counts_since[:, :1] - counts_since)  # the monitored weeks before s join the baseline
    b = b[:, None] + (exposure_since[:, :1] - exposure_since)
    weekly = (a / b) * exposure_since / np.arange(n_weeks, 0, -1)[None, :]
    llrs = []
    for rho in np.atleast_1d(np.asarray(rhos, dtype=float)):
        near, far = b + exposure_since, b + rho * exposure_since
        llrs.append(a * np.log(near / far) + counts_since * np.log(rho * near / far))
    phi = 1.0 / np.asarray(k, dtype=float)[:, None]
    sd = np.zeros_like(phi) if phi_sd is None else np.asarray(phi_sd, dtype=float)[:, None]
    nodes = _NORMAL_NODES if phi_sd is not None else ((0.0, 1.0),)
    surprise = np.zeros(n_sources)  # posterior average of exp(-evidence)
    start = np.full(n_sources, n_weeks)
    for z, weight in nodes:
        quasi = 1.0 + weekly * (phi if phi_sd is None else np.clip(phi + z * sd, *bounds))
        per_week = _log_mean_exp([llr / quasi for llr in llrs])  # over rho: sources x change weeks
        if z == 0.0:
            start = per_week.argmax(axis=1)
        evidence = _log_mean_exp(list(per_week.T))  # over the change week
        surprise += weight * np.exp(-np.clip(evidence, -50.0, 700.0))
    evidence = -np.log(surprise)
    return np.maximum(evidence, 0.0), np.where(evidence > 0, start, n_weeks)


def _log_mean_exp(terms: list[np.ndarray]) -> np.ndarray:
    """log(mean(exp(terms))) elementwise over a list of equal-shape arrays, without overflow."""
    top = np.max(terms, axis=0)
    total = np.zeros_like(top)
    for term in terms:
        total += np.exp(term - top)
    return top + np.log(total / len(terms))


def volume_band(usual_per_week: np.ndarray, params: Params = DEFAULT) -> np.ndarray:
    """0 for under params.volume_edges[0] referrals a month, 1 for the next band, and so on."""
    return np.searchsorted(np.asarray(params.volume_edges), usual_per_week * WEEKS_PER_MONTH, side="right")


def posterior(statistic: np.ndarray, threshold: np.ndarray | float, at_threshold: float = 0.9) -> np.ndarray:
    """How sure, 0 to 1: `at_threshold` where the evidence just reaches the alert threshold (a level a steady
    source reaches less than once in 100 quarters), and the odds growing with the likelihood ratio beyond it."""
    log_odds = np.log(at_threshold / (1 - at_threshold)) + np.clip(statistic - threshold, -50.0, 50.0)
    return 1.0 / (1.0 + np.exp(-log_odds))


def naive_score(counts: np.ndarray, *, window: int = 4) -> np.ndarray:
    """The naive rule's measure: the share by which the last `window` weeks fell short of the `window` before
    (0.3 = down 30%); -inf where the weeks before had no referral to fall from."""
    recent = counts[:, -window:].sum(axis=1)
    before = counts[:, -2 * window : -window].sum(axis=1)
    return np.where(before > 0, 1.0 - recent / np.maximum(before, 1.0), -np.inf)


def naive_rule(counts: np.ndarray, *, window: int = 4, drop: float = 0.3) -> np.ndarray:
    """What practices do today: the last 30 days down 30% or more on the 30 days before (in weeks: 4 on 4)."""
    return naive_score(counts, window=window) >= drop - 1e-12
