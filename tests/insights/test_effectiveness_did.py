"""The liaison-effectiveness estimate finds a lift planted in hand-made data, and refuses to guess on thin data.

Every visited office has 2 referrals in the 90 days before its visit and 2 + k after (k cycles 2, 3, 4, mean 3);
every comparable unvisited office has 2 before and 3 after (a change of +1 that no visit caused). The planted
difference in differences is therefore 3 - 1 = 2 referrals per office per 90 days.
"""

from __future__ import annotations

import datetime as dt

import pytest

from refloop.insights.effectiveness import MIN_EVENTS, effectiveness
from refloop.outreach.models import ActivityKind
from tests.insights.effectiveness_data import days_from, office, referrals_on, visit

pytestmark = pytest.mark.django_db

START, END, AS_OF = dt.date(2026, 2, 1), dt.date(2026, 3, 31), dt.date(2026, 7, 31)
JAN_15, MAR_15 = dt.date(2026, 1, 15), dt.date(2026, 3, 15)


def plant(users, *, treated: int = 12, controls: int = 10, controls_earlier: int = 0) -> list:
    liaison = users["liaison"]
    visited = []
    for i in range(treated):
        source = office()
        day = START + dt.timedelta(days=i)
        kind = ActivityKind.LUNCH if i % 2 else ActivityKind.VISIT
        visit(source[0], day, liaison=liaison, kind=kind)
        k = 2 + i % 3
        referrals_on(source, days_from(day, [-20, -40] + [5 + 10 * j for j in range(2 + k)]))
        visited.append(source)
    for _ in range(controls):
        # 20 October 2025 lies 91 to 180 days before every event: the window before the "before".
        referrals_on(office(), [dt.date(2025, 10, 20)] * controls_earlier + [JAN_15, JAN_15, MAR_15, MAR_15, MAR_15])
    return visited


def test_it_finds_the_planted_lift_with_an_interval_around_it(users):
    plant(users)
    result = effectiveness(start=START, end=END, as_of=AS_OF)

    overall = result.overall
    assert (overall.events, overall.sources, overall.referrals) == (12, 12, 12 * 4 + 12 * 3)
    assert overall.lift == pytest.approx(2.0)
    assert overall.before_mean == 2 and overall.after_mean == 5 and overall.control_change == pytest.approx(1.0)
    assert 0 < overall.low <= 2.0 <= overall.high < 4
    assert overall.verdict == "More referrals after"
    assert {e.controls for e in result.events} == {10} and {e.match_level for e in result.events} == {0}
    assert overall.pretrend == 0 and not overall.pretrend_warning  # nobody was changing before the visits


def test_offices_already_rising_before_their_visits_are_flagged(users):
    # The controls had 4 referrals in the window before the "before" and 2 in it (falling); the visited
    # offices had none and then 2 (rising): a pre-trend of (2 - 0) - (2 - 4) = 4 that the lift inherits.
    plant(users, controls_earlier=4)
    overall = effectiveness(start=START, end=END, as_of=AS_OF).overall
    assert overall.pretrend == pytest.approx(4.0)
    assert overall.pretrend_warning and overall.lift == pytest.approx(2.0)


def test_a_visited_office_is_never_a_control_and_an_office_visited_just_before_is_not_an_event(users):
    plant(users)
    # Visited on 20 January (before the period, inside every event's window) with a flood of referrals after:
    # as a control it would swamp the estimate.
    busy = office()
    visit(busy[0], dt.date(2026, 1, 20))
    referrals_on(busy, [JAN_15, JAN_15] + [MAR_15] * 30)
    # Visited in the period, but also 30 days earlier: its "before" already holds a visit.
    again = office()
    visit(again[0], dt.date(2026, 2, 20))
    visit(again[0], dt.date(2026, 3, 22))
    referrals_on(again, [dt.date(2026, 2, 1)] * 2 + [dt.date(2026, 4, 1)] * 9)

    result = effectiveness(start=START, end=END, as_of=AS_OF)

    lifts = {e.practice_id: e for e in result.events}
    assert busy[0].pk not in lifts
    assert lifts[again[0].pk].date == dt.date(2026, 2, 20)  # the first visit counts
    assert result.skipped["visited in the 90 days before"] == 1
    assert {e.controls for e in result.events} == {10}
    assert lifts[again[0].pk].lift == pytest.approx((9 - 2) - (3 - 2))
    assert result.overall.lift == pytest.approx((12 * 2 + 6) / 13)


def test_events_whose_90_days_after_have_not_passed_are_left_out(users):
    plant(users)
    result = effectiveness(start=START, end=END, as_of=dt.date(2026, 5, 3))  # 2 May: 90th day after 1 Feb
    assert result.skipped["too recent"] == 11
    assert result.overall.events == 1


def test_thin_data_gives_no_number_and_says_why(users):
    plant(users, treated=3)
    result = effectiveness(start=START, end=END, as_of=AS_OF)
    overall = result.overall
    assert overall.thin and overall.lift is None and overall.low is None
    assert overall.verdict == "Too thin to conclude"
    assert f"3 events (at least {MIN_EVENTS} needed)" in overall.thin_reason


def test_it_reports_per_activity_kind_and_per_liaison(users):
    plant(users)
    result = effectiveness(start=START, end=END, as_of=AS_OF)
    kinds = {e.key: e for e in result.by_kind}
    assert kinds["visit"].events == 6 and kinds["lunch"].events == 6
    assert kinds["visit"].thin and kinds["lunch"].thin  # six events each: below the minimum
    [liaison] = result.by_liaison
    assert liaison.label == "Liaison Tester" and liaison.events == 12
    assert liaison.lift == pytest.approx(2.0)


def test_without_comparable_offices_an_event_is_counted_as_unmatched(users):
    plant(users, treated=2, controls=0)
    result = effectiveness(start=START, end=END, as_of=AS_OF)
    assert result.events == [] and result.skipped["no comparable practice"] == 2
