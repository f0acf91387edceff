"""The early-warning detector on small hand-made histories whose answer is known (pure NumPy, no database)."""

from __future__ import annotations

import numpy as np
import pytest

from refloop.insights import earlywarning as ew

WEEKS = ew.DEFAULT.window_weeks  # 130: two years of baseline, then 26 monitored weeks


def steady_practice(rng: np.random.Generator, n: int = 40, per_week: float = 3.0) -> np.ndarray:
    return rng.poisson(per_week, size=(n, WEEKS)).astype(float)


def test_a_source_that_drops_by_80_percent_is_slipping_since_about_when_it_dropped():
    rng = np.random.default_rng(1)
    counts = steady_practice(rng)
    change = WEEKS - 10
    counts[0, :change] = rng.poisson(5.0, change)
    counts[0, change:] = rng.poisson(1.0, WEEKS - change)
    result = ew.scan(counts)
    assert result.kind[0] == ew.SLIPPING
    assert abs(int(result.since[0]) - change) <= 2
    assert result.usual[0] == pytest.approx(5.0, rel=0.15)
    assert 0.05 < result.ratio[0] < 0.4
    assert 0.5 < result.confidence[0] <= 1.0


def test_a_source_that_stops_is_dormant_from_the_week_after_its_last_referral():
    rng = np.random.default_rng(2)
    counts = steady_practice(rng)
    counts[1, : WEEKS - 6] = np.maximum(rng.poisson(4.0, WEEKS - 6), 1)
    counts[1, WEEKS - 6 :] = 0
    result = ew.scan(counts)
    assert result.kind[1] == ew.DORMANT
    assert result.since[1] == WEEKS - 6
    assert result.ratio[1] == 0.0


def test_a_source_that_triples_is_rising():
    rng = np.random.default_rng(3)
    counts = steady_practice(rng)
    counts[2, WEEKS - 8 :] = rng.poisson(9.0, 8)
    result = ew.scan(counts)
    assert result.kind[2] == ew.RISING
    assert result.ratio[2] > 2.0


def test_steady_sources_raise_nothing():
    rng = np.random.default_rng(4)
    result = ew.scan(steady_practice(rng, n=200))
    assert (result.kind == ew.NONE).mean() >= 0.98


def test_a_practice_wide_dip_is_the_season_not_every_source_slipping():
    rng = np.random.default_rng(5)
    season = np.ones(WEEKS)
    season[-6:] = 0.3  # every source sends a third as much: a holiday, or the practice's slow season
    counts = rng.poisson(4.0 * season[None, :], size=(60, WEEKS)).astype(float)
    result = ew.scan(counts)
    assert (result.kind != ew.NONE).sum() <= 1  # at most the odd source whose own noise happens to cross
    assert result.index[-1] == pytest.approx(0.3 / season.mean(), rel=0.15)
    blind = ew.scan(counts, index=np.ones(WEEKS))  # without the practice-wide level, everyone "slips"
    assert (blind.kind != ew.NONE).mean() > 0.5


def test_a_source_with_too_little_history_is_not_judged():
    rng = np.random.default_rng(6)
    counts = steady_practice(rng)
    counts[3, : WEEKS - 30] = 0  # first referral 30 weeks ago: four weeks of baseline, not 26
    counts[3, WEEKS - 5 :] = 0
    result = ew.scan(counts)
    assert not result.judged[3]
    assert result.kind[3] == ew.NONE


def test_a_silent_week_scores_the_surprise_of_the_silence():
    mu, k = 2.0, 4.0
    llr = ew.nb_llr(np.array([0.0, 1.0]), np.array([mu, mu]), k, 0.0)
    assert llr[0] == pytest.approx(-np.log((k / (k + mu)) ** k))
    assert llr[1] == -np.inf


def test_the_cusum_starts_its_run_the_week_after_its_last_reset():
    stat, start, peak = ew.cusum(np.array([[1.0, -3.0, 2.0, 2.0, -1.0]]))
    assert stat[0] == pytest.approx(3.0)
    assert start[0] == 2
    assert peak[0] == pytest.approx(4.0)


def test_the_naive_rule_compares_the_last_four_weeks_with_the_four_before():
    counts = np.array([[5, 5, 5, 5, 3, 3, 3, 5], [5, 5, 5, 5, 4, 4, 4, 4], [0, 0, 0, 0, 0, 0, 0, 0]], dtype=float)
    assert ew.naive_rule(counts).tolist() == [True, False, False]
    assert ew.naive_score(counts)[:2] == pytest.approx([0.3, 0.2])  # 14 on 20, 16 on 20
    assert ew.naive_score(counts)[2] == -np.inf  # nothing to fall from


def nb_counts(rng: np.random.Generator, per_week: float, k: float, n: int) -> np.ndarray:
    return rng.poisson(rng.gamma(k, per_week / k, size=(n, WEEKS))).astype(float)


def test_large_sources_keep_their_own_overdispersion_beside_many_small_ones():
    # 400 sources of 0.3 a week say almost nothing about their k; 40 of 8 a week with k = 3 and 40 with k = 100
    # say plainly. An unweighted spread estimate drowned the large ones in the small ones' noise and gave all the
    # pooled k; the precision-weighted one keeps them apart.
    rng = np.random.default_rng(7)
    counts = np.vstack([nb_counts(rng, 0.3, 20.0, 400), nb_counts(rng, 8.0, 3.0, 40), nb_counts(rng, 8.0, 100.0, 40)])
    k = ew.scan(counts).dispersion
    assert np.median(k[400:440]) < 5.0
    assert np.median(k[440:]) > 3 * np.median(k[400:440])


def test_the_evidence_averages_the_likelihood_ratio_over_the_change_week_and_the_drop():
    # One source of a known 2 a week (a posterior so sharp it is the truth), Poisson (k huge), four monitored weeks
    # with 2, 0, 0, 0 referrals. With the rate known, a change to rho x usual at week s has
    # LLR(s) = 2 E(s) (1 - rho) + C(s) log(rho): for rho = 0.5, s = 0..3: 4 - 2 log 2, 3, 2, 1; for 0.25: 6 - 2 log 4,
    # 4.5, 3, 1.5.
    actual = np.array([[2.0, 0.0, 0.0, 0.0]])
    index = np.ones(4)
    a, b, k = np.array([2e9]), np.array([1e9]), np.array([1e12])
    evidence, since = ew.segment_evidence(actual, index, a, b, k, (0.5,))
    half = np.array([4 - 2 * np.log(2), 3.0, 2.0, 1.0])
    assert evidence[0] == pytest.approx(np.log(np.mean(np.exp(half))), rel=1e-6)
    assert since[0] == 1  # the week after the last referral reads best
    # Two drop sizes, equally likely: the likelihood ratios are averaged, not the best one taken.
    quarter = np.array([6 + 2 * np.log(0.25), 4.5, 3.0, 1.5])
    evidence, _ = ew.segment_evidence(actual, index, a, b, k, (0.5, 0.25))
    assert evidence[0] == pytest.approx(np.log(np.mean(np.exp(np.r_[half, quarter]))), rel=1e-6)


def test_an_uncertain_overdispersion_asks_for_more_evidence():
    actual = np.array([[2.0, 0.0, 0.0, 0.0]])
    index = np.ones(4)
    a, b, k = np.array([2e9]), np.array([1e9]), np.array([10.0])  # 1/k = 0.1: variance 1.2 x the mean at 2 a week
    half = np.array([4 - 2 * np.log(2), 3.0, 2.0, 1.0])
    plain, _ = ew.segment_evidence(actual, index, a, b, k, (0.5,))
    assert plain[0] == pytest.approx(np.log(np.mean(np.exp(half / 1.2))), rel=1e-6)
    unsure, _ = ew.segment_evidence(actual, index, a, b, k, (0.5,), phi_sd=np.array([0.05]))
    # 1/k is 0.1 +- 0.05: three Gauss-Hermite nodes, the evidence -log of the weighted mean of exp(-evidence).
    nodes = [(0.0, 2 / 3), (np.sqrt(3), 1 / 6), (-np.sqrt(3), 1 / 6)]
    per_node = [(w, np.log(np.mean(np.exp(half / (1 + 2 * (0.1 + z * 0.05)))))) for z, w in nodes]
    assert unsure[0] == pytest.approx(-np.log(sum(w * np.exp(-e) for w, e in per_node)), rel=1e-6)
    assert unsure[0] < plain[0]


def test_a_steady_source_has_no_evidence_and_no_change_week():
    actual = np.array([[2.0, 2.0, 2.0, 2.0]])
    evidence, since = ew.segment_evidence(actual, np.ones(4), np.array([2e9]), np.array([1e9]), np.array([1e12]),
                                          (0.5,))  # fmt: skip
    assert evidence[0] == 0.0
    assert since[0] == 4


def test_slipping_averages_over_every_drop_from_half_to_all():
    assert ew.alternatives(ew.SLIPPING) == pytest.approx([0.025, 0.075, 0.125, 0.175, 0.225, 0.275, 0.325, 0.375,
                                                          0.425, 0.475])  # fmt: skip
    assert ew.alternatives(ew.RISING).tolist() == [2.0]


def test_a_lone_source_takes_its_own_overdispersion_with_nothing_to_shrink_toward():
    # Residuals -2, 2, -2, 2 around a mean of 2: sum((c - e)^2 - c) / sum(e^2) = (4 + 0 + 4 + 0) / 16 = 1/2.
    k, sd = ew.dispersion_posterior(np.array([[0.0, 4.0, 0.0, 4.0]]), np.full((1, 4), 2.0), np.ones((1, 4), bool))
    assert k[0] == pytest.approx(2.0)
    assert sd[0] == 0.0  # one source: no spread between sources to estimate, and the estimate is the pooled one


def test_a_small_source_knows_its_overdispersion_less_well_than_a_large_one():
    # As above: sources of 0.3 a week lean on the pool and keep its spread as their uncertainty; sources of 8 a week
    # say plainly what their k is.
    rng = np.random.default_rng(7)
    counts = np.vstack([nb_counts(rng, 0.3, 20.0, 400), nb_counts(rng, 8.0, 3.0, 40), nb_counts(rng, 8.0, 100.0, 40)])
    sd = ew.scan(counts).dispersion_sd
    assert np.median(sd[:400]) > 2 * np.median(sd[400:])
