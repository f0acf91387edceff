"""Top, new and growing sources on the dashboard, read from the rollups, with and without filters."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.utils import timezone

from refloop.insights import selectors
from refloop.insights.filters import Filters, add_months
from refloop.insights.rollups import rollup_catch_up
from refloop.practice.models import Location
from tests.directory.factories import provider
from tests.referrals.factories import location, patient_data, referral

pytestmark = pytest.mark.django_db


def _at(month: dt.date, day: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime(month.year, month.month, day, 10))


@pytest.fixture
def period():
    end = timezone.localdate().replace(day=1)
    end = add_months(end, -1)
    return add_months(end, -2), end


def test_new_growing_and_top_sources(users, period):
    start, end = period
    old_friend, newcomer, grower = provider(last_name="Old"), provider(last_name="New"), provider(last_name="Grow")
    by = users["coordinator"]
    referral(by=by, source=old_friend, received_at=_at(add_months(start, -20)))
    referral(by=by, source=old_friend, received_at=_at(start))
    for _ in range(2):
        referral(by=by, source=newcomer, received_at=_at(end), urgency="urgent")
    referral(by=by, source=grower, received_at=_at(add_months(start, -1)))
    for _ in range(4):
        referral(by=by, source=grower, received_at=_at(start, 12))

    filters = Filters(start=start, end=end)
    assert [s["id"] for s in selectors.new_sources(filters)] == [newcomer.pk]
    assert [(s["id"], s["received"], s["before"]) for s in selectors.growing_sources(filters)] == [(grower.pk, 4, 1)]
    assert [(s["id"], s["received"]) for s in selectors.top_sources(filters, "provider")] == [
        (grower.pk, 4), (newcomer.pk, 2), (old_friend.pk, 1),
    ]  # fmt: skip

    urgent = Filters(start=start, end=end, values={"urgency": "urgent"})  # read from the per-source sums
    assert [s["id"] for s in selectors.new_sources(urgent)] == [newcomer.pk]
    assert [(s["id"], s["received"]) for s in selectors.top_sources(urgent, "provider")] == [(newcomer.pk, 2)]
    assert selectors.growing_sources(urgent) == []


def test_location_and_urgency_filters_count_only_the_referrals_they_match(users, period):
    start, end = period
    north = Location.objects.create(
        name="North clinic", address_line1="1 North St", city="Columbus", state="OH", postal_code="43221"
    )
    main, by = location(), users["coordinator"]
    busy, steady = provider(last_name="Busy"), provider(last_name="Steady")
    for _ in range(3):
        referral(by=by, source=busy, received_at=_at(end), location=main, urgency="routine")
    referral(by=by, source=steady, received_at=_at(add_months(start, -1)), location=north, urgency="stat")
    for _ in range(2):
        referral(by=by, source=steady, received_at=_at(start), location=north, urgency="stat")

    def top(**values):
        return [(s["id"], s["received"]) for s in selectors.top_sources(Filters(start, end, values), "provider")]

    assert top(location=north.pk) == [(steady.pk, 2)]  # from the member rows
    assert top(location=main.pk) == [(busy.pk, 3)]
    assert top(urgency="stat") == [(steady.pk, 2)]  # from the per-source sums
    assert top(urgency="stat", location=main.pk) == []
    north_stat = Filters(start, end, {"location": north.pk, "urgency": "stat"})
    assert [(s["id"], s["before"]) for s in selectors.growing_sources(north_stat)] == []  # 2 is under 3
    assert [s["id"] for s in selectors.new_sources(Filters(start, end, {"urgency": "routine"}))] == [busy.pk]
    assert selectors.new_sources(Filters(start, end, {"urgency": "stat"})) == []  # steady sent one before


def test_the_dashboard_loads_the_source_lists_after_it_renders(users, client_as, period):
    start, end = period
    busy = provider(last_name="Busybody")
    for _ in range(3):
        referral(by=users["coordinator"], source=busy, received_at=_at(end))
    client = client_as("manager")
    query = {"start": f"{start:%Y-%m}", "end": f"{end:%Y-%m}"}
    page = client.get("/insights/", query).content.decode()
    assert 'hx-get="/insights/sources/?start=' in page
    assert "Busybody" not in page  # not computed with the page
    partial = client.get("/insights/sources/", query, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial
    row = partial[partial.index("Top referring providers") :]
    assert f'href="/directory/providers/{busy.pk}/"' in row
    assert f'href="/insights/referrals/?start={start:%Y-%m}&amp;end={end:%Y-%m}&amp;provider={busy.pk}">3</a>' in row
    full = client.get("/insights/sources/", query).content.decode()
    assert "<html" in full and "Busybody" in full
    assert client_as("liaison").get("/insights/sources/", query).status_code == 403


def test_the_new_list_holds_the_busiest_newcomers_when_old_sources_outrank_them(users, period):
    start, end = period
    by, main = users["coordinator"], location()
    returning = [provider(last_name=f"Returning{i}") for i in range(3)]  # silent the period before, not new
    newcomers = [provider(last_name=f"Newcomer{i}") for i in range(4)]
    for source in returning:
        referral(by=by, source=source, received_at=_at(add_months(start, -30)), location=main)
        for _ in range(6):
            referral(by=by, source=source, received_at=_at(end), location=main)
    for count, source in zip([1, 4, 2, 3], newcomers, strict=True):
        for _ in range(count):
            referral(by=by, source=source, received_at=_at(start), location=main)

    for values in ({}, {"location": main.pk}):  # the per-source sums, then the member rows
        filters = Filters(start=start, end=end, values=values)
        assert [(s["id"], s["received"]) for s in selectors.provider_lists(filters, limit=2)["new"]] == [
            (newcomers[1].pk, 4), (newcomers[3].pk, 3),
        ]  # fmt: skip


def test_lists_under_two_member_level_filters_are_answered_from_an_index_alone(users, period):
    """Under a location and a payer filter (two of the referral's own dimensions, which the per-source sums do not
    keep together) the lists are counted from member rows: the index led by either holds every column the counts
    need, so the table's rows are never read (at design scale, reading them made a 24-month list four times
    slower)."""
    start, end = period
    place = location()
    payer = "Aetna"
    referral(
        by=users["coordinator"], source=provider(), location=place, received_at=_at(start),
        patient_data=patient_data(payer=payer),
    )  # fmt: skip
    rollup_catch_up()  # the intake's queued referral folded in: only the lists' own statements are captured
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        lists = selectors.source_lists(Filters(start=start, end=end, values={"location": place.pk, "payer": payer}))
    assert [row["received"] for row in lists.top_providers] == [1]
    counted = [(sql, params) for sql, params in statements if "insights_rollupmember" in sql and "COUNT(" in sql]
    assert len(counted) == 2  # the provider lists in one statement, the top practices in another
    with connection.cursor() as cursor:
        for sql, params in counted:
            if connection.vendor == "sqlite":
                cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                plan = " ".join(str(row[-1]) for row in cursor.fetchall())
                led = r"COVERING INDEX rollupmember_sources_(loca|paye) \((location_id|payer)=\?"
                assert re.search(led, plan), plan
            else:
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("SET LOCAL enable_bitmapscan = off")
                cursor.execute(f"EXPLAIN {sql}", params)
                plan = " ".join(row[0] for row in cursor.fetchall())
                assert re.search(r"Index Only Scan using rollupmember_sources_(loca|paye)", plan), plan


def test_any_period_counts_each_source_from_the_running_totals_as_its_referrals_say(users):
    """Periods that start and end mid-year, span a year's end or several: each source's count in the period and in
    the one before, read from the per-source running totals, equals the referrals received then."""
    by = users["coordinator"]
    sources = [provider(last_name=f"Source{i}") for i in range(3)]
    first = dt.date(2023, 11, 1)
    received = []  # (source, month, urgency, payer)
    for i in range(26):
        month = add_months(first, i)
        for n, source in enumerate(sources):
            for k in range((i * (n + 2)) % 4):
                urgency = ("routine", "urgent", "stat")[(i + n) % 3]
                payer = ("Medicare", "Aetna")[(i + k) % 2]
                referral(by=by, source=source, received_at=_at(month, 3 + n), urgency=urgency,
                         patient_data=patient_data(payer=payer))  # fmt: skip
                received.append((source.pk, month, urgency, payer))

    def counted(start, end, values):
        counts = {}
        for pk, month, urgency, payer in received:
            matches = values.get("urgency", urgency) == urgency and values.get("payer", payer) == payer
            if start <= month <= end and matches:
                counts[pk] = counts.get(pk, 0) + 1
        return counts

    for months in (1, 2, 3, 5, 12, 13):
        for offset in range(months, 26 - months + 1, 2):
            start = add_months(first, offset)
            end = add_months(start, months - 1)
            before = add_months(start, -months)
            # no filter, and one each of the single filters the per-source sums keep (urgency, payer)
            for values in ({}, {"urgency": "urgent"}, {"payer": "Medicare"}):
                lists = selectors.provider_lists(Filters(start=start, end=end, values=values), limit=10)
                want = counted(start, end, values)
                assert {s["id"]: s["received"] for s in lists["top"]} == want, (start, end, values)
                earlier = counted(before, add_months(start, -1), values)
                for s in lists["growing"]:
                    assert s["before"] == earlier[s["id"]], (start, end, values)


def test_lists_read_the_running_totals_in_source_order_without_a_sort(users, period):
    """SQLite reads the per-source rows from the covering index, in source order, and sums each source as it goes: no
    table lookup and no temporary B-tree to group (at design scale, sorting monthly rows to group them was most of a
    24-month list's time)."""
    start, end = period
    referral(by=users["coordinator"], source=provider(), received_at=_at(start))
    rollup_catch_up()  # the intake's queued referral folded in: only the lists' own statements are captured
    statements = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        for values in ({}, {"territory": 1}, {"urgency": "stat"}, {"payer": "Aetna", "territory": 1}):
            selectors.source_lists(Filters(start=add_months(start, -21), end=end, values=values))
    summed = [(sql, params) for sql, params in statements if "insights_sourcerollup" in sql]
    assert len(summed) == 8  # per filter: the provider lists in one statement, the top practices in another
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for sql, params in summed:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            assert "COVERING INDEX sourcerollup_sources" in plan, plan
            assert "TEMP B-TREE FOR GROUP BY" not in plan, plan
