"""The bench's detection-quality metrics (bench/bench_earlywarning.py) on hand-made alarm histories."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.bench_earlywarning import (
    calibrate,
    detection_delay,
    false_alerts_per_100,
    median_delay,
    recall_within,
    threshold_for,
)
from refloop.insights import earlywarning as ew


def test_a_stable_source_that_alarms_twice_in_a_quarter_is_one_false_alert():
    alarms = np.zeros((200, 13), dtype=bool)
    alarms[0, [3, 9]] = True  # the same source, twice
    alarms[1, 12] = True
    assert false_alerts_per_100(alarms) == pytest.approx(1.0)  # 2 sources of 200


def test_delay_counts_weeks_to_the_first_alarm_and_never_is_infinite():
    alarms = np.array([[False, False, True, True], [True, False, False, False], [False] * 4])
    delay = detection_delay(alarms)
    assert delay.tolist()[:2] == [3.0, 1.0]
    assert math.isinf(delay[2])


def test_recall_within_weeks_and_median_delay_of_those_found():
    delay = np.array([1.0, 3.0, 5.0, 9.0, np.inf])
    assert recall_within(delay, 4) == pytest.approx(0.4)
    assert recall_within(delay, 8) == pytest.approx(0.6)
    assert median_delay(delay) == pytest.approx(4.0)  # of 1, 3, 5, 9


def test_threshold_for_lets_through_at_most_the_allowed_share():
    maxima = np.arange(1000, dtype=float)  # quarterly maxima 0..999
    h = threshold_for(maxima, 1.0)  # 1 per 100: ten sources may reach it
    assert (maxima >= h).sum() == 10
    assert (maxima >= np.nextafter(h, -np.inf)).sum() == 11  # the smallest such threshold: any lower lets 11 in


def test_calibration_shares_the_budget_between_dormant_and_slipping_in_each_band():
    rng = np.random.default_rng(0)
    n, scans = 4000, 13
    stats = {kind: rng.exponential(1.5, size=(n, scans)) for kind in ew.KIND_NAMES}
    bands = np.zeros((n, scans), dtype=int)
    bands[n // 2 :] = 1
    thresholds = calibrate(stats, bands, 2, 1.0)
    for band in (0, 1):
        rows = slice(0, n // 2) if band == 0 else slice(n // 2, n)
        slip = stats[ew.SLIPPING][rows].max(axis=1) >= thresholds[ew.SLIPPING][band]
        dormant = stats[ew.DORMANT][rows].max(axis=1) >= thresholds[ew.DORMANT][band]
        assert 100 * (slip | dormant).mean() <= 1.0
        assert 100 * dormant.mean() <= 0.3
        assert 100 * (slip | dormant).mean() >= 0.8  # the budget is used, not wasted
