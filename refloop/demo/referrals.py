"""The demo practice's referrals: years of the closed loop, with the patterns a real orthopaedic practice sees.

A few sources send most patients (the directory's volume weights), more arrive in late winter and spring and
after the summer sports season and fewer in late December; new sources appear in the last year and a share of
the top sources slip away in the last months (`ctx.objects["slipping_providers"]`, what the early warning must
find). Each referral lives a story of workflow steps with explicit times (received, contacted, accepted,
scheduled, seen or no-show or cancelled, report sent, sent back; or declined or lost with a reason), cut at now,
so the recent weeks leave open referrals in every queue, some of them overdue.

Two ways to write the same plan. Every referral is first planned in plain Python (`_Planner`, one seeded random
stream, date order): the source, the patient, the reason and its story as (step, time, who, data) tuples.
A plan is then written one of two ways:
- through the services (`write_with_services`: `referral_receive`, `referral_log_contact`,
  `referral_transition`), exactly as the intake page and the queues do, audit trail and letters included.
  On SQLite that costs 25 to 50 ms a referral (some 30 queries for the receipt and five to seven steps, plus
  the letters queued for each step): 20,000 would take 10 to 15 minutes, 1,000,000 a working day.
- in bulk (`_BulkWriter`): the rows built in Python and inserted 5,000 referrals a batch, about 0.3 ms a
  referral (1,000,000 in about 5.5 minutes). Django's bulk_create spends about a millisecond a referral
  preparing fields, so the rows go in with executemany, primary keys given in order and values adapted by the
  connection's own adapters.
The small demo writes every referral received in the last `SERVICE_DAYS` days, and every one still open,
through the services (the part people open, work and audit) and the finished history before that in bulk;
the large scale writes everything in bulk.

How the bulk path stays consistent with the services: each step is checked with `workflow.transition_problem`
for the role of whoever makes it and applied with the services' own `_apply`; the coordinator, owner and due
time come from `sla.owner_for` and `sla.due_at` with the same service levels and the same `now` (the time of
the last step); every event row gets the action, states, note and data (`services._event_data`) the service
writes, and `version` counts the steps. tests/test_demo_referrals.py writes the same plans both ways and
compares every field. What the bulk path leaves out on purpose: the audit trail (it records what people did
in this installation, not generated history) and what a step sets off (the letters queued on each event's
post_save, the thank-you notes after `referral_event_committed`): letters for years-old history would be wrong.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import operator
import random
from collections.abc import Iterable, Iterator
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Exists, Max, OuterRef, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from refloop.demo import DemoContext
from refloop.demo.directory import PLACES
from refloop.directory.models import (
    OtherSource,
    OtherSourceKind,
    ProviderPractice,
    ReferringPractice,
    ReferringProvider,
)
from refloop.lib.icd10 import parse_icd10_list
from refloop.lib.sqlite_pragma import sqlite_pragma
from refloop.practice.models import ServiceLevels
from refloop.referrals import services, sla
from refloop.referrals.models import Channel, Patient, Referral, ReferralEvent, Sex, Urgency
from refloop.referrals.workflow import OPEN_STATES, TRANSITIONS, LostReason, State, transition_problem

SERVICE_DAYS = 30  # small scale: referrals received since then (and all still open) go through the services
BATCH = 5_000
# Open queue -> how many days ago (from, to) the referrals that stall in it arrived.
STALLS = {
    State.RECEIVED: (2, 8),
    State.ACCEPTED: (3, 12),
    State.NO_SHOW: (10, 40),
    State.CANCELLED: (10, 40),
    State.SEEN: (10, 40),
    State.REPORT_SENT: (12, 40),
}
UTC = dt.UTC


def _cumulative(weights) -> list[float]:
    return list(itertools.accumulate(weights))


def _pick(rng: random.Random, items, cumulative: list[float]):
    """rng.choices(items, cum_weights=cumulative)[0], the same draw without building a list."""
    return items[bisect.bisect(cumulative, rng.random() * cumulative[-1], 0, len(cumulative) - 1)]


# codes | category | clinicians (indexes into frame.CLINICIANS) | ages | % female | urgency % routine urgent stat
# | weight | reason as the referring office writes it
_REASON_TABLE = """
M17.11       |joint   |1 1 7|50-88|60|94 6 0  |9  |Right knee osteoarthritis; failed NSAIDs and 6 weeks of PT
M17.12       |joint   |1 1 7|50-88|60|94 6 0  |7  |Left knee osteoarthritis, worse on stairs; medial joint space loss
M16.11       |joint   |1 7  |50-88|55|94 6 0  |4  |Right hip osteoarthritis; groin pain limiting walking
M16.12       |joint   |1 7  |50-88|55|94 6 0  |3  |Left hip osteoarthritis; night pain despite NSAIDs
M54.50       |spine   |2 5 5|22-80|52|94 5 1  |9  |Low back pain for 8 weeks, no red flags; not improving with PT
M51.26 M54.16|spine   |2 5  |25-65|45|75 20 5 |5  |Lumbar disc herniation on MRI with right leg radiculopathy
M48.062      |spine   |2 5  |55-85|50|90 10 0 |3  |Lumbar stenosis with neurogenic claudication after one block
M54.2        |spine   |2 5  |25-75|55|95 5 0  |3  |Neck pain radiating to the shoulder blade for 3 months
S83.511A     |sports  |0 6  |14-40|45|65 32 3 |3  |Suspected right ACL tear: pivoting injury in soccer, effusion
S83.512A     |sports  |0 6  |14-40|45|65 32 3 |3  |Suspected left ACL tear: basketball landing, knee gave way
S83.241A     |sports  |0 6 7|18-65|40|85 14 1 |4  |Right medial meniscus tear: twisting injury, locking
M25.561      |sports  |0 6 7|18-75|55|95 5 0  |6  |Right knee pain for 6 weeks without trauma; X-ray negative
M25.562      |sports  |0 6 7|18-75|55|95 5 0  |5  |Left knee pain and swelling after more running mileage
S93.401A     |sports  |4 6  |12-50|50|78 20 2 |3  |Right ankle sprain; still not bearing full weight at 3 weeks
M75.101      |shoulder|0 6  |40-78|45|90 9 1  |5  |Suspected right rotator cuff tear: weakness, night pain
M75.102      |shoulder|0 6  |40-78|45|80 18 2 |3  |Suspected left rotator cuff tear after a fall; cannot lift arm
M75.41       |shoulder|0 6 7|30-70|50|96 4 0  |4  |Right shoulder impingement; failed 6 weeks of PT
M75.02       |shoulder|0 6  |40-70|70|95 5 0  |2  |Left adhesive capsulitis; loss of external rotation
M25.511      |shoulder|0 6 7|25-75|50|96 4 0  |3  |Right shoulder pain for 2 months, worse reaching overhead
G56.01       |hand    |3    |30-75|70|96 4 0  |4  |Right carpal tunnel syndrome: night numbness; EMG confirms
G56.02       |hand    |3    |30-75|70|90 10 0 |2  |Left carpal tunnel syndrome with thenar weakness
M65.311      |hand    |3    |40-75|65|97 3 0  |2  |Trigger thumb, right thumb; locking every morning
M77.11       |hand    |3 6  |30-60|45|97 3 0  |2  |Right lateral epicondylitis (tennis elbow) for 4 months
M72.2        |foot    |4    |30-65|60|97 3 0  |4  |Plantar fasciitis: 6 months of heel pain despite orthotics
M21.611      |foot    |4    |30-75|85|98 2 0  |2  |Painful right bunion; asks about surgery
M76.61       |foot    |4 6  |25-60|45|95 5 0  |2  |Right Achilles tendinitis in a runner, 3 months
S52.501A     |fracture|3    |8-90 |65|15 55 30|2  |Right distal radius fracture, fall on outstretched hand; splinted
S52.502A     |fracture|3    |8-90 |65|15 55 30|1.5|Left distal radius fracture from a fall on ice; splinted
S42.001A     |fracture|0    |10-60|30|20 65 15|1  |Right clavicle fracture from a bicycle fall; sling
S82.61XA     |fracture|4    |15-80|55|5 60 35 |1  |Displaced right lateral malleolus fracture; splinted in the ED
"""


def _parse_reasons(table: str) -> list[tuple]:
    rows = []
    for line in table.strip().splitlines():
        codes, category, clinicians, ages, female, urgency, weight, reason = (c.strip() for c in line.split("|"))
        low, high = (int(a) for a in ages.split("-"))
        rows.append(
            (
                codes.split(),
                reason,
                category,
                tuple(int(c) for c in clinicians.split()),
                (low, high),
                int(female),
                _cumulative(int(u) for u in urgency.split()),
                float(weight),
            )
        )
    return rows


# (codes, reason, category, clinicians, ages, % female, urgency weights, weight)
REASONS = _parse_reasons(_REASON_TABLE)
CATEGORIES = ["joint", "spine", "sports", "shoulder", "hand", "foot", "fracture"]
# How each kind of source leans (category multipliers); taxonomy code -> profile.
PROFILES = {
    "general": dict.fromkeys(CATEGORIES, 1.0) | {"fracture": 0.7},
    "spine": dict.fromkeys(CATEGORIES, 0.3) | {"spine": 10.0, "fracture": 0.05},
    "foot": dict.fromkeys(CATEGORIES, 0.2) | {"foot": 10.0, "fracture": 0.5, "sports": 0.8},
    "sports": {"joint": 1.0, "spine": 1.0, "sports": 4.0, "shoulder": 2.5, "hand": 1.0, "foot": 1.5, "fracture": 1.0},
    "pediatric": dict.fromkeys(CATEGORIES, 0.0) | {"sports": 5.0, "fracture": 5.0},
    "ed": dict.fromkeys(CATEGORIES, 0.1) | {"fracture": 12.0, "sports": 2.0, "spine": 1.0},
    "joint": dict.fromkeys(CATEGORIES, 0.3) | {"joint": 6.0, "hand": 1.0},
}
TAXONOMY_PROFILE = {
    "111N00000X": "spine",
    "2084N0400X": "spine",
    "213E00000X": "foot",
    "225100000X": "sports",
    "207QS0010X": "sports",
    "208000000X": "pediatric",
    "207P00000X": "ed",
    "207RR0500X": "joint",
}
OTHER_SOURCE_WEIGHT = {
    OtherSourceKind.SELF: 30,
    OtherSourceKind.HOSPITAL: 25,
    OtherSourceKind.PATIENT: 15,
    OtherSourceKind.CAMPAIGN: 15,
    OtherSourceKind.INSURER: 10,
}
# (payer, plan, weight under 65, weight 65 and over, member ID pattern); Medicare's is the MBI (1EG4TE5MK73).
PAYERS = [
    ("Medicare", "Medicare Part B", 3, 48, "NAX9AX9AA99"),
    ("CareSource", "Ohio Medicaid", 18, 4, "99999999999"),
    ("Anthem Blue Cross and Blue Shield", "Blue Access PPO", 22, 8, "AAA999999999"),
    ("UnitedHealthcare", "Choice Plus", 15, 12, "999999999"),
    ("Aetna", "Open Access Managed Choice", 10, 6, "W999999999"),
    ("Medical Mutual", "SuperMed Plus", 14, 5, "999999999"),
    ("Humana", "Gold Plus HMO", 2, 15, "H99999999"),
    ("Cigna", "Open Access Plus", 8, 1, "U99999999"),
    ("Self-pay", "", 5, 1, ""),
]
MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"  # the letters a Medicare Beneficiary Identifier may use
MEMBER_ID_CHARS = {"N": "123456789", "9": "0123456789", "A": MBI_LETTERS, "X": MBI_LETTERS + "0123456789"}
LANGUAGES = [("English", 940), ("Spanish", 35), ("Somali", 15), ("Nepali", 5), ("Arabic", 5)]
# Channel mix at the start and at the end of the period: fax gives way to e-referrals.
CHANNELS = [Channel.FAX, Channel.FHIR, Channel.PHONE, Channel.WEB, Channel.HL7, Channel.EMAIL]
CHANNEL_WEIGHTS_EARLY = _cumulative([54, 12, 13, 9, 7, 5])
CHANNEL_WEIGHTS_LATE = _cumulative([40, 26, 11, 11, 8, 4])
URGENCIES = [Urgency.ROUTINE, Urgency.URGENT, Urgency.STAT]
INTERFACE_LABEL = {Channel.FHIR: "FHIR interface", Channel.HL7: "HL7 interface", Channel.WEB: "web form"}
MONTH_FACTOR = [1.0, 1.12, 1.18, 1.14, 1.06, 0.95, 0.86, 0.98, 1.12, 1.08, 0.97, 0.9]
WEEKDAY_FACTOR = [1.3, 1.15, 1.1, 1.05, 0.9, 0.12, 0.08]
STREET_SUFFIXES = ["Dr", "Rd", "Ave", "St", "Ct", "Ln", "Way", "Pl", "Blvd", "Cir"]

CONTACT_NOTES = [
    "Left voicemail to schedule",
    "Spoke with the patient; will call back to schedule",
    "Sent a portal message with appointment options",
    "Verified insurance and authorization requirements",
]
UNREACHABLE_NOTES = ["No answer; left voicemail", "Number not in service", "Mailed a letter asking the patient to call"]
DECLINE_REASONS = [
    "Better served by rheumatology: inflammatory arthritis suspected",
    "Needs imaging first: please send recent X-rays and resubmit",
    "Duplicate of a referral already scheduled",
    "Outside our scope: recommend pain management",
    "The patient's plan requires an in-network orthopaedic group",
]
CANCEL_REASONS = [
    "Patient cancelled: work conflict",
    "Patient ill on the day",
    "Clinician called to the operating room",
    "Office closed for weather",
    "Patient had no transportation",
]
RETURN_REASONS = [
    "Patient did not reschedule after two calls and a letter",
    "Patient chose to continue care with the referring provider",
    "Symptoms resolved; the patient no longer wants a visit",
]
FOLLOW_UPS = {
    "joint": [
        "Corticosteroid injection given; resume home exercises and see us in 3 months if the pain returns.",
        "Joint replacement scheduled; please complete the pre-operative medical clearance we faxed.",
        "PT twice a week for 6 weeks and NSAIDs as tolerated; back to you for ongoing care.",
    ],
    "spine": [
        "Epidural steroid injection scheduled; continue PT; we will update you after the procedure.",
        "No surgical lesion; core strengthening PT for 6 weeks; back to you for ongoing care.",
        "Decompression recommended; the patient is considering it and we will keep you informed.",
    ],
    "sports": [
        "MRI confirms the tear; arthroscopic repair scheduled; the post-operative PT plan will follow.",
        "Bracing and PT for 6 weeks; may return to sport when cleared; back to you for routine care.",
        "No instability; home exercise program; follow up with us only if symptoms persist.",
    ],
    "shoulder": [
        "Subacromial injection given; PT for rotator cuff strengthening; recheck in 8 weeks.",
        "Full-thickness tear on MRI; arthroscopic repair scheduled.",
        "PT and home stretching; expect slow recovery over several months.",
    ],
    "hand": [
        "Release scheduled; please hold anticoagulants per the attached plan.",
        "Night splint and injection given; back to you, and we will see the patient again if numbness returns.",
        "Injection given today; return as needed.",
    ],
    "foot": [
        "Stretching, night splint and orthotics; injection if no better in 8 weeks.",
        "Surgery discussed; the patient will decide and call us.",
        "Walking boot for 4 weeks, then back to normal shoes gradually.",
    ],
    "fracture": [
        "Non-displaced: cast for 6 weeks with X-rays at each visit; back to you after union.",
        "Open reduction and internal fixation done; follow-up X-rays here; operative note attached.",
        "Healing well in a cast; we will see the patient at 6 weeks and send an update.",
    ],
}


class _Patient:
    """One patient's details; `pk` once the bulk path has written them (a repeat patient's next referral uses it)."""

    __slots__ = ("data", "pk")

    def __init__(self, data: dict):
        self.data = data
        self.pk: int | None = None


class _Plan:
    """One referral as it will be written: the receipt, then (name, at, by, data, note) steps cut at now."""

    __slots__ = (
        "patient",
        "provider",
        "other_source",
        "secondary",
        "reason",
        "codes",
        "category",
        "urgency",
        "channel",
        "received_at",
        "coordinator",
        "intake_by",
        "intake_label",
        "authorization",
        "visits",
        "notes",
        "external_id",
        "steps",
    )

    @property
    def final_state(self) -> str:
        return _state_after(self.steps)

    @property
    def is_open(self) -> bool:
        return self.final_state in OPEN_STATES


def _state_after(steps) -> str:
    state = State.RECEIVED
    for name, *_ in steps:
        if name != "contact":
            state = TRANSITIONS[name].target
    return state


def build(ctx: DemoContext) -> None:
    levels = ServiceLevels.current()
    calendar = levels.calendar()
    # The service levels and holidays do not change while the demo loads: read the holidays once, not per due time.
    levels.calendar = lambda: calendar
    now = ctx.objects.get("now") or timezone.now()  # tests pin the clock to compare two loads
    planner = _Planner(ctx, levels, now)
    bulk = _BulkWriter(levels, now)
    through_services: list[_Plan] = []
    if ctx.scale.name == "large":
        bulk.write(planner.plans())
    else:
        since = now - dt.timedelta(days=SERVICE_DAYS)

        def history() -> Iterator[_Plan]:
            for plan in planner.plans():
                if plan.received_at >= since or plan.is_open:
                    through_services.append(plan)
                else:
                    yield plan

        bulk.write(history())
        for plan in through_services:
            write_with_services(plan)
    events = bulk.events + sum(len(p.steps) + 1 for p in through_services)
    _update_last_referral_dates()
    ctx.objects.update(
        slipping_providers=planner.slipping,
        rising_providers=planner.rising,
        new_providers=planner.new_sources,
        referrals_through_services=len(through_services),
    )
    ctx.count("patients", Patient.objects.count())
    ctx.count("referrals", bulk.referrals + len(through_services))
    ctx.count("referral events", events)


class _Planner:
    """Plans every referral of the period in date order, from one seeded random stream."""

    def __init__(self, ctx: DemoContext, levels: ServiceLevels, now: dt.datetime):
        self.rng = rng = random.Random(ctx.rng.getrandbits(64))
        self.scale = ctx.scale
        self.now = now
        self.tz = ZoneInfo(settings.TIME_ZONE)
        self.calendar = levels.calendar()
        self.today = now.astimezone(self.tz).date()
        self.start = self.today - dt.timedelta(days=365 * ctx.scale.years)
        users = ctx.objects["users"]
        self.coordinators = [u for name, u in sorted(users.items()) if u.role == "coordinator"]
        # Referrals that arrive by an interface have nobody assigned: the service gives them the default owner.
        self.default_owner = sla.owner_for(Referral(state=State.RECEIVED), levels=levels)
        self.clinicians = ctx.objects["clinicians"]
        places = {c.pk: list(c.locations.order_by("pk")) for c in self.clinicians}
        self.places = [places[c.pk] for c in self.clinicians]
        self.providers: list[ReferringProvider] = ctx.objects["providers"]
        self.volume: dict[int, float] = ctx.objects["provider_volume"]
        self.other_sources = list(OtherSource.objects.order_by("pk"))
        self.provider_indexes = range(len(self.providers))
        self.other_cum = _cumulative(OTHER_SOURCE_WEIGHT.get(s.kind, 5) for s in self.other_sources)
        self.campaigns = [s for s in self.other_sources if s.kind == OtherSourceKind.CAMPAIGN]
        self.reason_cum = {
            name: _cumulative(PROFILES[name][r[2]] * r[7] * (r[4][0] <= 17 or name != "pediatric") for r in REASONS)
            for name in PROFILES
        }
        fake = ctx.fake
        self.female = [fake.first_name_female() for _ in range(600)]
        self.male = [fake.first_name_male() for _ in range(600)]
        self.surnames = [fake.last_name() for _ in range(1500)]
        self.streets = [f"{fake.last_name()} {rng.choice(STREET_SUFFIXES)}" for _ in range(800)]
        self.languages, self.language_cum = zip(*LANGUAGES, strict=True)
        self.language_cum = _cumulative(self.language_cum)
        self.payer_cum = (_cumulative(p[2] for p in PAYERS), _cumulative(p[3] for p in PAYERS))
        # Business days from the start to well after today, and for each date the index of the next one.
        self.business_days: list[dt.date] = []
        self.next_business: dict[dt.date, int] = {}
        day = self.start - dt.timedelta(days=7)
        while day <= self.today + dt.timedelta(days=366):
            self.next_business[day] = len(self.business_days)
            day += dt.timedelta(days=1)
            if self.calendar.is_business_day(day):
                self.business_days.append(day)
        self.recent_patients: list[_Patient] = []
        self.patient_serial = 0
        self._choose_sources()
        # In recent weeks a few referrals stall in each queue (the no-show nobody called back, the report not yet
        # dictated): every queue has work to show, some of it overdue, whatever the scale.
        quota = max(2, round(self.scale.referrals / max((self.today - self.start).days, 1) / 4))
        self.stalls = sorted(
            (now - dt.timedelta(days=rng.uniform(low, high)), state)
            for state, (low, high) in STALLS.items()
            for _ in range(quota)
        )

    def business_day_after(self, day: dt.date, days: int) -> dt.date:
        """The `days`-th business day after `day` (1 is the next one), from a table made once."""
        index = self.next_business.get(day)
        if index is None or index + days > len(self.business_days):
            for _ in range(days):
                day = self.calendar.next_business_day(day)
            return day
        return self.business_days[index + days - 1]

    def _choose_sources(self) -> None:
        """Who starts sending in the last year, and which top sources slip away in the last 3-6 months."""
        rng = self.rng
        ranked = sorted(self.providers, key=lambda p: (-self.volume[p.pk], p.pk))
        top = ranked[: max(len(ranked) // 10, 5)]
        self.slipping = sorted(rng.sample(top, max(2, round(len(top) * 0.15))), key=lambda p: p.pk)
        slipping_ids = {p.pk for p in self.slipping}
        rest = [p for p in self.providers if p.pk not in slipping_ids]
        self.new_sources = sorted(rng.sample(rest, round(len(rest) * 0.12)), key=lambda p: p.pk)
        days = (self.today - self.start).days
        self.starts = {p.pk: self.today - dt.timedelta(days=rng.randint(1, 364)) for p in self.new_sources}
        for provider in rng.sample(rest, round(len(rest) * 0.10)):  # the network also grew in earlier years
            self.starts.setdefault(provider.pk, self.start + dt.timedelta(days=rng.randint(0, max(days - 365, 1))))
        self.slips = {
            p.pk: (self.today - dt.timedelta(days=rng.randint(90, 180)), rng.uniform(0.0, 0.5)) for p in self.slipping
        }
        # A few steady sources just below the top send three times as many lately: the early warning's rising ones
        # (drawn from a stream of their own, so every other draw stays as it was).
        grow = random.Random(self.scale.referrals)
        steady = [p for p in ranked[len(top) : 3 * len(top)] if p.pk not in self.starts]
        self.rising = sorted(grow.sample(steady, min(len(steady), max(2, len(top) // 10))), key=lambda p: p.pk)
        self.slips.update({p.pk: (self.today - dt.timedelta(days=grow.randint(56, 120)), 3.0) for p in self.rising})
        self.profiles = [TAXONOMY_PROFILE.get(p.taxonomy_code, "general") for p in self.providers]

    def _source_weights(self, week_start: dt.date) -> list[float]:
        weights = []
        for provider in self.providers:
            weight = self.volume[provider.pk]
            start = self.starts.get(provider.pk)
            if start is not None and week_start + dt.timedelta(days=6) < start:
                weight = 0.0
            slip = self.slips.get(provider.pk)
            if slip is not None and week_start >= slip[0]:
                weight *= slip[1]
            weights.append(weight)
        return _cumulative(weights)

    def _day_weight(self, day: dt.date) -> float:
        weight = MONTH_FACTOR[day.month - 1] * WEEKDAY_FACTOR[day.weekday()]
        if (day.month == 12 and day.day >= 20) or (day.month == 1 and day.day <= 2):
            weight *= 0.55
        if day in self.calendar.holidays:
            weight *= 0.15
        return weight * (1 + 0.06 * (day - self.start).days / 365)  # the practice grows a little each year

    def plans(self) -> Iterator[_Plan]:
        rng = self.rng
        days = [self.start + dt.timedelta(days=n) for n in range((self.today - self.start).days + 1)]
        weights = [self._day_weight(day) for day in days]
        per_weight = self.scale.referrals / sum(weights)
        week, source_cum = None, []
        for day, weight in zip(days, weights, strict=True):
            expected = weight * per_weight
            count = int(expected) + (rng.random() < expected - int(expected))
            if day.weekday() == 0 or week is None:
                week, source_cum = day, self._source_weights(day)
            progress = (day - self.start).days / max((self.today - self.start).days, 1)
            for _ in range(count):
                plan = self._plan(day, source_cum, progress)
                if plan is not None:
                    yield plan

    def _plan(self, day: dt.date, source_cum: list[float], progress: float) -> _Plan | None:
        rng = self.rng
        plan = _Plan()
        channel = _pick(rng, CHANNELS, CHANNEL_WEIGHTS_LATE if rng.random() < progress else CHANNEL_WEIGHTS_EARLY)
        business_day = self.calendar.is_business_day(day)
        if channel == Channel.PHONE and not business_day:
            channel = Channel.WEB
        if channel in INTERFACE_LABEL and rng.random() < 0.2:
            minutes = rng.randint(0, 24 * 60 - 1)  # interfaces deliver at any hour
        else:
            minutes = rng.randint(8 * 60, 17 * 60 - 1)
        local = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60, rng.randint(0, 59)), tzinfo=self.tz)
        received_at = local.astimezone(UTC)
        if received_at > self.now:
            return None
        plan.received_at = received_at
        plan.channel = channel
        if rng.random() < 0.03 or not source_cum or source_cum[-1] == 0:
            source = _pick(rng, self.other_sources, self.other_cum)
            plan.provider, plan.other_source = None, source
            profile = "ed" if source.kind == OtherSourceKind.HOSPITAL else "general"
            city, zips, _ = rng.choice(PLACES)
            postal_code = rng.choice(zips)
        else:
            index = _pick(rng, self.provider_indexes, source_cum)
            provider = self.providers[index]
            plan.provider, plan.other_source = provider, None
            profile = self.profiles[index]
            city, postal_code = provider.city, provider.postal_code
        plan.secondary = rng.choice(self.campaigns) if self.campaigns and rng.random() < 0.02 else None
        codes, reason, category, clinician_ids, ages, female, urgency_cum, _ = _pick(
            rng, REASONS, self.reason_cum[profile]
        )
        plan.codes, plan.reason, plan.category = codes, reason, category
        plan.urgency = _pick(rng, URGENCIES, urgency_cum)
        plan.patient = self._patient(day, ages if profile != "pediatric" else (ages[0], 17), female, city, postal_code)
        data = plan.patient.data
        plan.authorization, plan.visits = "", None
        if data["payer"] in ("CareSource", "Humana") and rng.random() < 0.7:
            plan.authorization = f"PA{rng.randint(10**7, 10**8 - 1)}"
            plan.visits = rng.randint(1, 3)
        plan.notes = ""
        if data["preferred_language"] != "English":
            plan.notes = f"{data['preferred_language']} interpreter needed."
        elif rng.random() < 0.05:
            plan.notes = rng.choice(["Prefers afternoon appointments.", "Uses a wheelchair.", "Call the daughter."])
        plan.external_id = ""
        if channel == Channel.FHIR:
            plan.external_id = f"ServiceRequest/{rng.getrandbits(48):012x}"
        elif channel == Channel.HL7:
            plan.external_id = f"RF{rng.randint(10**8, 10**9 - 1)}"
        if channel in INTERFACE_LABEL:
            plan.coordinator, plan.intake_by, plan.intake_label = None, None, INTERFACE_LABEL[channel]
            coordinator = self.default_owner
        else:
            coordinator = rng.choice(self.coordinators)
            plan.coordinator, plan.intake_by, plan.intake_label = coordinator, coordinator, ""
        clinician = rng.choice(clinician_ids)
        stall = None
        if self.stalls and self.stalls[0][0] <= received_at:
            stall = self.stalls.pop(0)[1]
        steps = _Story(self, coordinator, clinician, plan, stall).steps()
        cut = next((n for n, step in enumerate(steps) if step[1] > self.now), len(steps))
        plan.steps = steps[:cut]
        return plan

    def _patient(self, day: dt.date, ages, female_share, city, postal_code) -> _Patient:
        rng = self.rng
        if self.recent_patients and rng.random() < 0.06:  # the other knee, a new injury: a patient we know
            return rng.choice(self.recent_patients)
        sex = Sex.FEMALE if rng.random() * 100 < female_share else Sex.MALE
        first = rng.choice(self.female if sex == Sex.FEMALE else self.male)
        last = rng.choice(self.surnames)
        age = rng.randint(*ages)
        birth_date = day - dt.timedelta(days=365 * age + rng.randint(0, 364) + age // 4)
        table = self.payer_cum[age >= 65]
        payer, plan_name, _, _, pattern = _pick(rng, PAYERS, table)
        self.patient_serial += 1
        data = {
            "first_name": first,
            "last_name": last,
            "birth_date": birth_date,
            "sex": sex,
            "phone": f"({rng.choice(['614', '614', '380', '740'])}) {rng.randint(200, 989)}-{rng.randint(1000, 9999)}",
            "email": f"{first.lower()}.{last.lower()}{rng.randint(1, 99)}@{rng.choice(['example.com', 'example.net'])}"
            if rng.random() < 0.55
            else "",
            "mrn": f"L{self.patient_serial:08d}",
            "payer": payer,
            "plan": plan_name,
            "member_id": self._member_id(pattern),
            "preferred_language": _pick(rng, self.languages, self.language_cum),
            "address_line1": f"{rng.randint(100, 9899)} {rng.choice(self.streets)}",
            "address_line2": "",
            "city": city,
            "state": "OH",
            "postal_code": postal_code,
        }
        patient = _Patient(data)
        self.recent_patients.append(patient)
        if len(self.recent_patients) > 3000:
            del self.recent_patients[:1000]
        return patient

    def _member_id(self, pattern: str) -> str:
        rng, parts = self.rng, []
        for char, run in itertools.groupby(pattern):
            width = len(list(run))
            if char == "9":  # a run of digits in one draw
                parts.append(f"{rng.randrange(10**width):0{width}d}")
            else:
                allowed = MEMBER_ID_CHARS.get(char, char)
                parts.extend(rng.choice(allowed) for _ in range(width))
        return "".join(parts)


class _Story:
    """The steps one referral goes through, with times: the loop as coordinators and clinicians work it."""

    def __init__(self, planner: _Planner, coordinator, clinician: int, plan: _Plan, stall: str | None):
        self.p = planner
        self.stall = stall
        self.appointment: dt.datetime | None = None
        self.rng = planner.rng
        self.coordinator = coordinator
        self.clinician = planner.clinicians[clinician]
        self.location = self.rng.choice(planner.places[clinician])
        self.plan = plan
        self.out: list[tuple] = []
        self.last = plan.received_at

    def add(self, name: str, at: dt.datetime, by=None, data=None, note: str = "") -> dt.datetime:
        at = max(at, self.last + dt.timedelta(minutes=1))
        self.out.append((name, at, by or self.coordinator, data or {}, note))
        self.last = at
        return at

    def open_time(self, moment: dt.datetime) -> dt.datetime:
        """`moment` if the office is open then, else soon after the next opening."""
        local = moment.astimezone(self.p.tz)
        day = local.date()
        if self.p.calendar.is_business_day(day) and 8 <= local.hour < 17:
            return moment
        if not (self.p.calendar.is_business_day(day) and local.hour < 8):
            day = self.p.calendar.next_business_day(day)
        opening = dt.datetime.combine(day, dt.time(8), tzinfo=self.p.tz)
        return (opening + dt.timedelta(minutes=self.rng.randint(0, 150))).astimezone(UTC)

    def hours_later(self, since: dt.datetime, low: float, high: float) -> dt.datetime:
        return self.open_time(since + dt.timedelta(hours=self.rng.uniform(low, high)))

    def business_days_later(self, since: dt.datetime, days: int) -> dt.datetime:
        if days == 0:
            return self.hours_later(since, 0.3, 4)
        day = self.p.business_day_after(since.astimezone(self.p.tz).date(), days)
        minutes = self.rng.randint(8 * 60, 17 * 60 - 1)
        return dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=self.p.tz).astimezone(UTC)

    def slot(self, since: dt.datetime, days: int) -> dt.datetime:
        """An appointment time `days` business days after `since`, in clinic hours (8:00-16:30, 15 minutes)."""
        day = since.astimezone(self.p.tz).date()
        if days or not self.p.calendar.is_business_day(day):
            day = self.p.business_day_after(day, max(days, 1))
        minutes = 8 * 60 + 15 * self.rng.randint(0, 34)
        moment = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=self.p.tz).astimezone(UTC)
        return moment if moment > since + dt.timedelta(hours=1) else self.slot(since, days + 1)

    def lead_days(self) -> int:
        urgency = self.plan.urgency
        if urgency == Urgency.STAT:
            return self.rng.randint(0, 1)
        if urgency == Urgency.URGENT or self.stall in (State.NO_SHOW, State.CANCELLED):
            return self.rng.randint(1, 4)
        return self.rng.randint(3, 20)

    def schedule_data(self, appointment_at: dt.datetime) -> dict:
        return {"appointment_at": appointment_at, "location": self.location, "clinician": self.clinician}

    def lose(self, at: dt.datetime, reason: str) -> None:
        self.add("mark_lost", at, data={"lost_reason": reason})

    def steps(self) -> list[tuple]:
        """The whole story; when the referral is to stall in a queue, only the steps up to entering it."""
        self.story()
        if self.stall is None:
            return self.out
        targets = [TRANSITIONS[name].target if name != "contact" else None for name, *_ in self.out]
        if self.stall == State.RECEIVED:  # contacted perhaps, never triaged
            return self.out[: next(i for i, target in enumerate(targets) if target is not None)]
        return self.out[: targets.index(self.stall) + 1] if self.stall in targets else self.out

    def outcome(self, round_: int) -> str:
        """What happens at an appointment; a second or third appointment is missed more often."""
        if self.stall == State.NO_SHOW:
            return "no_show"
        if self.stall == State.CANCELLED:
            return "cancel"
        if self.stall in (State.SEEN, State.REPORT_SENT):
            return "seen"
        draw = self.rng.random()
        for name, share in (("lost", 0.005), ("no_show", 0.08 + 0.07 * round_), ("cancel", 0.03)):
            if draw < share:
                return name
            draw -= share
        return "seen"

    def story(self) -> None:
        rng, plan = self.rng, self.plan
        received = plan.received_at
        if plan.urgency == Urgency.STAT:
            first = self.hours_later(received, 0.2, 2.5)
        elif plan.urgency == Urgency.URGENT:
            first = self.hours_later(received, 0.5, 6)
        elif rng.random() < 0.88:
            first = self.hours_later(received, 1, 20)
        else:  # a busy week: the first-contact SLA is missed
            first = self.business_days_later(received, rng.randint(2, 4))
        exit_draw = rng.random() if self.stall is None else 1.0
        if exit_draw < 0.03:  # declined at triage
            if rng.random() < 0.3:
                self.add("accept", self.hours_later(received, 0.5, 8))
            self.add("decline", self.hours_later(received, 2, 30), data={"reason": rng.choice(DECLINE_REASONS)})
            return
        if exit_draw < 0.045:  # could not reach the patient: two or three tries, then lost
            at = first
            for attempt in range(rng.randint(2, 3)):
                at = self.add("contact", at, note=rng.choice(UNREACHABLE_NOTES))
                if attempt == 0 and rng.random() < 0.4:
                    self.add("accept", self.hours_later(at, 0.3, 6))
                at = self.business_days_later(self.last, rng.randint(1, 3))
            self.lose(self.business_days_later(at, rng.randint(2, 5)), LostReason.COULD_NOT_REACH)
            return
        if rng.random() < 0.55:
            self.add("contact", first, note=rng.choice(CONTACT_NOTES))
        self.add("accept", self.hours_later(self.last, 0.3, 10))
        if exit_draw < 0.072:  # lost before an appointment was made
            reasons = [LostReason.INSURANCE, LostReason.PATIENT_DECLINED, LostReason.WENT_ELSEWHERE]
            self.lose(self.business_days_later(self.last, rng.randint(1, 6)), rng.choices(reasons, [10, 8, 6])[0])
            return
        when = self.hours_later(self.last, 0.2, 16 if plan.urgency == Urgency.ROUTINE else 3)
        if self.appointments(when):
            self.visit()

    def appointments(self, when: dt.datetime) -> bool:
        """Schedule until the patient is seen (True), or the loop ends unseen (False)."""
        rng = self.rng
        appointment = self.slot(when, self.lead_days())
        scheduled = self.add("schedule", when, data=self.schedule_data(appointment))
        for round_ in range(3):
            if appointment - scheduled > dt.timedelta(days=3) and rng.random() < 0.07:  # the patient asks to move
                when = scheduled + (appointment - scheduled) * rng.uniform(0.2, 0.7)
                appointment = self.slot(appointment, rng.randint(2, 8))
                scheduled = self.add("reschedule", when, data=self.schedule_data(appointment))
            outcome = self.outcome(round_)
            if outcome == "seen":
                self.appointment = appointment
                return True
            if outcome == "lost":
                self.lose(appointment - (appointment - scheduled) * rng.uniform(0.1, 0.6), LostReason.WENT_ELSEWHERE)
                return False
            if outcome == "no_show":
                missed = self.add("mark_no_show", appointment + dt.timedelta(minutes=rng.randint(20, 90)))
                follow_up = self.business_days_later(missed, rng.randint(1, 4))
                exits = ([LostReason.COULD_NOT_REACH, LostReason.PATIENT_DECLINED], 0.15, 0.40)
            else:
                gap = min(dt.timedelta(days=3), (appointment - scheduled) / 2)
                reason = rng.choice(CANCEL_REASONS)
                cancelled = self.add("cancel", appointment - gap * rng.uniform(0.1, 1.0), data={"reason": reason})
                follow_up = self.business_days_later(cancelled, rng.randint(0, 3))
                exits = ([LostReason.WENT_ELSEWHERE, LostReason.INSURANCE], 0.20, 0.35)
            lost_reasons, lost_share, unseen_share = exits
            draw = rng.random()
            if draw < lost_share:
                self.lose(follow_up, rng.choice(lost_reasons))
                return False
            if draw < unseen_share or round_ == 2:
                self.add("return_to_referrer", follow_up, data={"reason": rng.choice(RETURN_REASONS)})
                return False
            appointment = self.slot(follow_up, self.lead_days())
            scheduled = self.add("schedule", follow_up, data=self.schedule_data(appointment))
        return False

    def visit(self) -> None:
        """Seen, the consult report (late for about one in seven), and the patient sent back."""
        rng = self.rng
        clinician_user = self.clinician.user if self.clinician.user_id else None
        seen = self.add("mark_seen", self.appointment + dt.timedelta(minutes=rng.randint(20, 90)), by=clinician_user)
        late = rng.random() < 0.15
        days = rng.randint(3, 10) if late else rng.choices([0, 1, 2], [40, 40, 20])[0]
        report = self.add("send_report", self.business_days_later(seen, days), by=clinician_user)
        days_back = rng.randint(0, 6) if rng.random() < 0.9 else rng.randint(8, 14)
        back = report + dt.timedelta(days=days_back, hours=rng.uniform(0, 4))
        self.add("send_back", back, data={"follow_up": rng.choice(FOLLOW_UPS[self.plan.category])})


def write_with_services(plan: _Plan) -> Referral:
    """Write one plan as the intake page and the queues would: the receipt, then each step by its service."""
    received = services.referral_receive(
        patient_data=plan.patient.data,  # a patient we know is found by the MRN, as at the intake desk
        referring_provider=plan.provider,
        other_source=plan.other_source,
        secondary_source=plan.secondary,
        reason=plan.reason,
        diagnosis_codes=list(plan.codes),
        urgency=plan.urgency,
        received_at=plan.received_at,
        channel=plan.channel,
        authorization_number=plan.authorization,
        visits_approved=plan.visits,
        notes=plan.notes,
        external_id=plan.external_id,
        coordinator=plan.coordinator,
        by=plan.intake_by,
        by_label=plan.intake_label,
    )
    referral = received.referral
    for name, at, by, data, note in plan.steps:
        if name == "contact":
            referral = services.referral_log_contact(referral=referral, by=by, note=note, at=at)
        else:
            referral = services.referral_transition(referral=referral, name=name, by=by, data=data, note=note, at=at)
    return referral


def _batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _json_adapter():
    """JSON in the connection's format; the small values most rows share ({}, a channel, the codes) encoded once."""
    encoded: dict = {}

    def adapt(value):
        if isinstance(value, dict) and len(value) > 1:
            return connection.ops.adapt_json_value(value, None)
        key = (type(value), tuple(value.items()) if isinstance(value, dict) else tuple(value))
        if key not in encoded:
            if len(encoded) > 10_000:
                return connection.ops.adapt_json_value(value, None)
            encoded[key] = connection.ops.adapt_json_value(value, None)
        return encoded[key]

    return adapt


def _sqlite_page_cache(mebibytes: int):
    """On SQLite, a bigger page cache while a million rows go in, so index pages are not read again and again
    (the default is 2 MiB); the connection's own setting comes back afterwards."""
    return sqlite_pragma("cache_size", -1024 * mebibytes)


class _Table:
    """Rows of one model inserted with executemany, primary keys given in order.

    Each row comes as a tuple in the order of `columns`; the other columns take `constants` or the field's
    default. Values are adapted by the connection's own adapters (dates, times and JSON as SQLite or
    PostgreSQL store them); PostgreSQL's sequences are reset once the rows are in (`reset_sequences`).
    """

    def __init__(self, model, columns: tuple[str, ...], **constants):
        ops = connection.ops
        adapters = {
            "DateTimeField": ops.adapt_datetimefield_value,
            "DateField": ops.adapt_datefield_value,
            "JSONField": _json_adapter(),
        }
        given = {name: i + 1 for i, name in enumerate(columns)}  # 0 is the primary key
        fields = model._meta.concrete_fields
        self.layout: list[tuple[int, object]] = []  # per column: where its value comes from, or the fixed value
        self.adapt = []
        for i, field in enumerate(fields):
            adapt = adapters.get(field.get_internal_type())
            if field.primary_key or field.attname in given:
                self.layout.append((0 if field.primary_key else given[field.attname], None))
                if adapt and not field.primary_key:
                    self.adapt.append((i, adapt))
            else:
                value = constants[field.name] if field.name in constants else field.get_default()
                self.layout.append((-1, adapt(value) if adapt and value is not None else value))
        names = ", ".join(ops.quote_name(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        table = ops.quote_name(model._meta.db_table)
        self.sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - names from the model, quoted
        self.rows: list[list] = []
        self.next_id = (model.objects.aggregate(last=Max("pk"))["last"] or 0) + 1

    def add(self, values: tuple) -> int:
        """Queue one row; its primary key."""
        pk = self.next_id
        self.next_id += 1
        given = (pk, *values)
        row = [given[source] if source >= 0 else fixed for source, fixed in self.layout]
        for i, adapt in self.adapt:
            if row[i] is not None:
                row[i] = adapt(row[i])
        self.rows.append(row)
        return pk

    def flush(self) -> int:
        count = len(self.rows)
        with connection.cursor() as cursor:
            cursor.executemany(self.sql, self.rows)
        self.rows = []
        return count


PATIENT_COLUMNS = tuple(services.PATIENT_FIELDS)
EVENT_COLUMNS = ("referral_id", "at", "by_id", "by_label", "action", "from_state", "to_state", "note", "data")
STAMPS = ("id", "created_at", "updated_at")


class _BulkWriter:
    """Writes plans as rows, batch by batch, with the field values the services would have given them."""

    def __init__(self, levels: ServiceLevels, now: dt.datetime):
        self.levels = levels
        self.now = now
        self.default_owner = sla.owner_for(Referral(state=State.RECEIVED), levels=levels)
        # services._practice_of: the provider's primary affiliation, else the first one.
        self.practice_of: dict[int, int] = {}
        affiliations = ProviderPractice.objects.order_by("provider_id", "-is_primary", "pk")
        for provider_id, practice_id in affiliations.values_list("provider_id", "practice_id"):
            self.practice_of.setdefault(provider_id, practice_id)
        # A blank Referral's values in field order: building one from positions is four times quicker.
        fields = Referral._meta.concrete_fields
        self.blank = [f.get_default() for f in fields]
        self.position = {f.attname: i for i, f in enumerate(fields)}
        self.referral_columns = tuple(f.attname for f in fields if f.name not in STAMPS)
        self.referral_values = operator.attrgetter(*self.referral_columns)
        self.patient_values = operator.itemgetter(*PATIENT_COLUMNS)
        self.referrals = 0
        self.events = 0

    def write(self, plans: Iterable[_Plan]) -> None:
        stamps = {"created_at": self.now, "updated_at": self.now}
        patients = _Table(Patient, (*PATIENT_COLUMNS, "name_key"), **stamps)
        referrals = _Table(Referral, self.referral_columns, **stamps)
        events = _Table(ReferralEvent, EVENT_COLUMNS)
        with _sqlite_page_cache(256):
            for batch in _batched(plans, BATCH):
                for plan in batch:
                    if plan.patient.pk is None:
                        data = plan.patient.data
                        name_key = Patient.make_name_key(data["first_name"], data["last_name"])  # as Patient.save
                        plan.patient.pk = patients.add((*self.patient_values(data), name_key))
                    self._referral(plan, referrals, events)
                patients.flush()
                self.referrals += referrals.flush()
                self.events += events.flush()
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [Patient, Referral, ReferralEvent]):
                cursor.execute(sql)

    def _new_referral(self, **values) -> Referral:
        row = self.blank.copy()
        for name, value in values.items():
            row[self.position[name]] = value
        return Referral(*row)

    def _referral(self, plan: _Plan, referrals: _Table, events: _Table) -> None:
        received_at = plan.received_at
        provider_id = plan.provider.pk if plan.provider else None
        referral = self._new_referral(
            patient_id=plan.patient.pk,
            referring_provider_id=provider_id,
            other_source_id=plan.other_source.pk if plan.other_source else None,
            referring_practice_id=self.practice_of.get(provider_id),
            secondary_source_id=plan.secondary.pk if plan.secondary else None,
            reason=plan.reason.strip(),
            diagnosis_codes=parse_icd10_list(list(plan.codes)),
            urgency=plan.urgency,
            received_at=received_at,
            channel=plan.channel,
            authorization_number=plan.authorization,
            visits_approved=plan.visits,
            notes=plan.notes,
            external_id=plan.external_id,
            state=State.RECEIVED,
            last_event_at=received_at,
        )
        coordinator = plan.coordinator
        if coordinator is None and plan.intake_by is not None and plan.intake_by.role == "coordinator":
            coordinator = plan.intake_by
        referral.coordinator = coordinator or self.default_owner
        # The events services._record writes, once the referral has its key.
        receipt = ("receive", "", State.RECEIVED, received_at, plan.intake_by, plan.intake_label, "")
        history = [(*receipt, {"channel": plan.channel})]
        for name, at, by, data, note in plan.steps:
            if name == "contact":  # services.referral_log_contact
                referral.first_contact_at = referral.first_contact_at or at
                history.append(("contact", referral.state, referral.state, at, by, "", note, {}))
            else:  # services.referral_transition
                problem = transition_problem(name, referral.state, getattr(by, "role", None))
                if problem:
                    raise ValueError(f"The demo planned a step the loop refuses: {problem}")
                from_state = referral.state
                services._apply(referral, name, data, at)
                referral.state = TRANSITIONS[name].target
                note = note or str(data.get("reason", "") or data.get("follow_up", "") or "")
                history.append((name, from_state, referral.state, at, by, "", note, services._event_data(data)))
            referral.last_event_at = at
        referral.version = 1 + len(plan.steps)
        referral.owner = sla.owner_for(referral, levels=self.levels)
        referral.due_at = sla.due_at(referral, now=referral.last_event_at, levels=self.levels)
        referral_id = referrals.add(self.referral_values(referral))
        for action, from_state, to_state, at, by, by_label, note, data in history:
            user = by if getattr(by, "pk", None) else None
            label = by_label or (user.get_username() if user else "system")
            events.add((referral_id, at, user.pk if user else None, label, action, from_state, to_state, note, data))


def _update_last_referral_dates() -> None:
    """Each source's last-referral date, as services._touch_source keeps it: the local day of its latest one."""
    for model, field in ((ReferringProvider, "referring_provider"), (ReferringPractice, "referring_practice")):
        latest = Referral.objects.filter(**{field: OuterRef("pk")}).order_by("-received_at")
        model.objects.filter(Exists(latest)).update(
            last_referral_on=Subquery(latest.annotate(day=TruncDate("received_at")).values("day")[:1])
        )
