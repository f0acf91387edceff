"""A recount of the rollups straight from the referrals, in Python, to hold the incremental sums against."""

from __future__ import annotations

from collections import Counter, defaultdict

from refloop.insights.models import (
    ALL_ID,
    ALL_TEXT,
    CUBE_DIMENSIONS,
    LOST_REASONS,
    MEASURES,
    RUNNING_COLUMNS,
    ReferralRollup,
    RollupMember,
    SourceRollup,
)
from refloop.insights.rollups import CUBOIDS, TEXT_DIMENSIONS, member_values, members_for, rollup_catch_up
from refloop.referrals.models import Referral


def _measures(m: RollupMember) -> dict[str, float]:
    out: dict[str, float] = {
        "received": 1,
        "scheduled": int(m.scheduled),
        "seen": int(m.seen),
        "report_sent": int(m.report_sent),
        "closed_loop": int(m.closed_loop),
        "declined": int(m.declined),
        "open": int(m.open),
        "contacted": int(m.contact_hours is not None),
        "contact_hours_sum": m.contact_hours or 0,
        "appointment_days_sum": m.appointment_days or 0,
    }
    for reason in LOST_REASONS:
        out[f"lost_{reason}"] = int(m.lost_reason == reason)
    if m.contact_bucket is not None:
        out[f"c{m.contact_bucket}"] = 1
    if m.appointment_bucket is not None:
        out[f"a{m.appointment_bucket}"] = 1
    if m.turnaround_days is not None:
        out[f"t{m.turnaround_days}"] = 1
    return out


def recount() -> tuple[dict, dict, dict]:
    """(members, cube, sources) as they should be: keyed tuples to value tuples, zero rows left out."""
    members, cube, sources = {}, defaultdict(Counter), defaultdict(Counter)
    for m in members_for(Referral.objects.all()):
        members[m.referral_id] = member_values(m)
        measures = _measures(m)
        for number, kept in CUBOIDS.items():
            dims = tuple(
                getattr(m, d)
                if d in ("source_kind", "payer") or d in kept
                else (ALL_TEXT if d in TEXT_DIMENSIONS else ALL_ID)
                for d in CUBE_DIMENSIONS
            )
            cube[(number, m.month, *dims)].update(measures)
        for kind, source_id in (("provider", m.provider_id), ("practice", m.practice_id), ("other", m.other_source_id)):
            if not source_id:
                continue
            # counted in its year's total and in the running totals from its month to December: under every
            # urgency, location, clinician and payer, and under each of its own with the other three as "all"
            running = {f"to_{month:02d}": 1 for month in range(m.month.month, 13)}
            every = (ALL_TEXT, ALL_ID, ALL_ID, ALL_TEXT)
            own = (m.urgency, m.location_id, m.clinician_id, m.payer)
            variants = [every] + [every[:i] + (own[i],) + every[i + 1 :] for i in range(4)]
            for singles in variants:
                key = (kind, source_id, m.month.year, m.territory_id, m.liaison_id, m.specialty, *singles)
                sources[key].update({"received": 1, **running})
    cube_rows = {k: tuple(round(v.get(name, 0), 2) for name in MEASURES) for k, v in cube.items()}
    source_rows = {k: (v["received"], *(v[name] for name in RUNNING_COLUMNS)) for k, v in sources.items()}
    return members, cube_rows, source_rows


def stored() -> tuple[dict, dict, dict]:
    """What the rollups hold once the referrals queued by intakes and steps are folded in, as every reader sees them."""
    rollup_catch_up()
    members = {m.referral_id: member_values(m) for m in RollupMember.objects.all()}
    cube = {
        (row.cuboid, row.month, *(getattr(row, d) for d in CUBE_DIMENSIONS)): tuple(
            round(getattr(row, name), 2) for name in MEASURES
        )
        for row in ReferralRollup.objects.exclude(received=0)
    }
    sources = {
        (r.kind, r.source_id, r.year, r.territory_id, r.liaison_id, r.specialty, r.urgency, r.location_id,
         r.clinician_id, r.payer): (
            r.received, *(getattr(r, name) for name in RUNNING_COLUMNS)
        )
        for r in SourceRollup.objects.exclude(received=0)
    }
    return members, cube, sources


def assert_rollups_match_recount() -> None:
    expected, actual = recount(), stored()
    for name, want, got in zip(("members", "cube", "sources"), expected, actual, strict=True):
        missing = {k: v for k, v in want.items() if got.get(k) != v}
        extra = {k: v for k, v in got.items() if k not in want}
        assert not missing, f"{name} differ from the recount: {list(missing.items())[:3]}"
        assert not extra, f"{name} the recount does not have: {list(extra.items())[:3]}"
    assert not ReferralRollup.objects.filter(received=0).exists()
    assert not SourceRollup.objects.filter(received=0).exists()
