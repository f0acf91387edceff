"""The demo practice's outreach: years of liaison activities, a fortnight planned ahead, follow-ups, concerns,
gifts and meals in the Stark ledger, written through the outreach services as a liaison's phone would.

What a visitor should find: each liaison's week with planned visits, follow-ups, birthdays and concerns to
close; a due-for-a-visit list; concerns open for days to months; a compliance ledger where one physician is
close to this year's limit (`ctx.objects["near_limit_physician"]`) and where 2025, the year with no figure on
file, shows its items recorded under a compliance override rather than against an assumed limit. Items that
would take a physician over a limit are not bought (the service refuses them and the demo moves on), as a
liaison told so by the form would do.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.db.models import Min
from django.utils import timezone

from refloop.demo import DemoContext, bulk
from refloop.directory.models import ReferringPractice, ReferringProvider, StaffContact, Territory
from refloop.outreach import compliance, services
from refloop.outreach.models import (
    Activity,
    ActivityKind,
    ActivityStatus,
    ConcernCategory,
    ConcernStatus,
    Origin,
    OutreachSettings,
    OutreachTask,
    Severity,
)

# kind -> weight among a liaison's touches
KINDS = {
    ActivityKind.VISIT: 34,
    ActivityKind.CALL: 18,
    ActivityKind.EMAIL: 9,
    ActivityKind.LUNCH: 13,
    ActivityKind.DROP_OFF: 8,
    ActivityKind.GIFT: 3,
    ActivityKind.THANK_YOU: 9,
    ActivityKind.EDUCATION: 6,
}
TIER_WEIGHT = {"A": 8, "B": 3, "C": 1}
PURPOSES = {
    ActivityKind.VISIT: [
        "Introduce the new sports medicine clinic",
        "Same-week appointments for acute injuries",
        "Review last quarter's referrals and report turnaround",
        "Meet the new referral coordinator",
        "Bring the updated referral pad and MRI protocol",
    ],
    ActivityKind.LUNCH: [
        "Lunch-and-learn: knee osteoarthritis, when to refer",
        "In-service: fracture care and the walk-in clinic",
        "Lunch-and-learn: low back pain red flags",
        "Sandwiches and the new spine surgeon's introduction",
    ],
    ActivityKind.CALL: ["Checked on a delayed consult report", "Scheduling question from the front desk"],
    ActivityKind.EMAIL: ["Sent the new fax number and referral form", "Shared the PT protocol after ACL repair"],
    ActivityKind.DROP_OFF: ["Bagels and coffee for the morning huddle", "Fruit tray and referral pads"],
    ActivityKind.GIFT: ["Netter's orthopaedic atlas", "Fruit basket for the holidays", "Anatomical knee model"],
    ActivityKind.THANK_YOU: ["Handwritten thank-you note"],
    ActivityKind.EDUCATION: ["CME evening: shoulder exam workshop", "Grand rounds: hip arthroscopy"],
}
OUTCOMES = [
    "Office will send knee MRIs to us first.",
    "Asked for faster reports; promised two business days.",
    "Front desk prefers the web referral form.",
    "Dr. mentioned patients wait long for spine appointments.",
    "Good visit; staff liked the new referral pad.",
    "",
    "",
]
FOLLOW_UPS = [
    "Send the referral pad and fax cover sheet",
    "Call back about the report delay",
    "Bring the PT protocol for post-op ACL",
    "Set up a lunch-and-learn for next month",
]
CONCERNS = [
    (ConcernCategory.COMPLAINT, "Consult report took three weeks to arrive", "The office called twice."),
    (ConcernCategory.COMPLAINT, "Patient waited 40 minutes past the appointment time", "Mrs. R. told her PCP."),
    (ConcernCategory.COMPLAINT, "Referral fax was never acknowledged", "Office resent it after a week."),
    (ConcernCategory.QUESTION, "Which surgeon takes workers' compensation cases?", ""),
    (ConcernCategory.QUESTION, "Do we accept the new Medicaid managed-care plans?", ""),
    (ConcernCategory.REQUEST, "Wants reports by Direct message instead of fax", ""),
    (ConcernCategory.REQUEST, "Asked for a lunch-and-learn on osteoporosis", ""),
    (ConcernCategory.COMPLAINT, "Patient was billed for a visit she cancelled", "Billing dispute passed on."),
]
RESOLUTIONS = [
    "Called the office manager; reports now go out within two business days.",
    "Apologized to the patient; front desk retrained on running late.",
    "Answered by phone and followed up by email.",
    "Set up Direct messaging with their EHR.",
]
NEAR_LIMIT_SHARE = Decimal("0.88")
OVERRIDE_2025 = (
    "No 2025 figure is on file in refloop; reviewed by compliance against the 2024 limit of $507 and kept "
    "well under it."
)


def _weekday(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def _money(rng, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


class _Writer:
    """Plans each touch with the demo's randomness and logs it through outreach.services."""

    def __init__(self, ctx: DemoContext, today: dt.date, *, unvisited: set[int]):
        self.ctx, self.rng, self.today = ctx, ctx.rng, today
        users = ctx.objects["users"]
        self.manager = users["manager"]
        self.unvisited = unvisited
        self.people: dict[int, list] = {}
        self.staff: dict[int, list] = {}
        self.logged = 0
        self.refused = 0
        self.bulk: bulk.ActivityWriter | None = None  # set at the design scale: past touches written as rows

    def attendees(self, practice: ReferringPractice):
        if practice.pk not in self.people:
            providers = practice.providers.filter(is_active=True, merged_into__isnull=True).exclude(
                pk__in=self.unvisited
            )
            self.people[practice.pk] = list(providers)
            self.staff[practice.pk] = list(StaffContact.objects.filter(practice=practice, is_active=True))
        return self.people[practice.pk], self.staff[practice.pk]

    def touch(self, *, liaison, practice, kind: str, day: dt.date, planned: bool = False) -> None:
        data = self.draw(liaison=liaison, practice=practice, kind=kind, day=day, planned=planned)
        if self.bulk is not None and not planned:
            self.touch_in_bulk(data)
            return
        rng = self.rng
        cost = data.cost
        by, reason = liaison, ""
        if cost and not planned and compliance.limit_amount(day.year) is None:
            # A year with no figure: compliance lets items through by override, kept under last year's limit.
            reference = compliance.limit_amount(day.year - 1) or Decimal("0.00")
            if any(check.after > reference for check in services.activity_plan(data).checks):
                self.refused += 1
                return
            by, reason = self.manager, OVERRIDE_2025
        try:
            logged = services.activity_log(data=data, by=by, override_reason=reason)
        except compliance.LimitRefused:
            self.refused += 1
            return
        self.logged += 1
        for task in logged.activity.follow_ups.all():
            if task.due_on < self.today - dt.timedelta(days=3) or rng.random() < 0.3:
                services.task_complete(task=task, by=liaison)

    def touch_in_bulk(self, data: services.ActivityInput) -> None:
        """A done touch of the past as rows (refloop/demo/bulk.py), drawing the follow-up's outcome as above."""
        follow_up = None
        if data.follow_up_title:
            done = data.follow_up_due < self.today - dt.timedelta(days=3) or self.rng.random() < 0.3
            follow_up = (data.follow_up_title, data.follow_up_due, done)
        fields = {
            "kind": data.kind,
            "status": ActivityStatus.DONE,
            "date": data.date,
            "duration_minutes": data.duration_minutes,
            "practice": data.practice,
            "liaison": data.liaison,
            "created_by": data.liaison,
            "origin": Origin.MANUAL,
            "cost": data.cost or Decimal("0.00"),
            "purpose": data.purpose.strip()[:300],
            "outcome": data.outcome.strip(),
        }
        if self.bulk.add(fields=fields, who=data.providers, crew=data.staff, follow_up=follow_up):
            self.logged += 1
        else:
            self.refused += 1

    def draw(self, *, liaison, practice, kind: str, day: dt.date, planned: bool) -> services.ActivityInput:
        """What a liaison did on one touch: who was there, what it cost, the purpose and the follow-up."""
        rng = self.rng
        providers, staff = self.attendees(practice)
        who = rng.sample(providers, min(len(providers), rng.randint(1, 2))) if providers else []
        crew = []
        cost = Decimal("0.00")
        if kind in (ActivityKind.LUNCH, ActivityKind.EDUCATION):
            who = rng.sample(providers, min(len(providers), rng.randint(1, 5))) if providers else []
            crew = rng.sample(staff, min(len(staff), rng.randint(0, 3)))
            per_head = (12, 18) if kind == ActivityKind.LUNCH else (0, 30)
            cost = sum((_money(rng, *per_head) for _ in range(len(who) + len(crew) + 1)), Decimal("0.00"))
        elif kind == ActivityKind.DROP_OFF:
            crew = rng.sample(staff, min(len(staff), rng.randint(1, 3)))
            cost = _money(rng, 25, 60)
        elif kind == ActivityKind.GIFT:
            who = who[:1]
            cost = _money(rng, 20, 85)
        elif kind in (ActivityKind.CALL, ActivityKind.EMAIL):
            crew = rng.sample(staff, min(len(staff), 1))
        if not who and not crew:
            cost = Decimal("0.00")
        follow_up = rng.random() < 0.25 and kind in (ActivityKind.VISIT, ActivityKind.LUNCH, ActivityKind.CALL)
        data = services.ActivityInput(
            kind=kind,
            date=day,
            status=ActivityStatus.PLANNED if planned else ActivityStatus.DONE,
            practice=practice,
            providers=who,
            staff=crew,
            liaison=liaison,
            start_time=dt.time(rng.choice([8, 9, 10, 11, 12, 13, 14, 15]), rng.choice([0, 30])) if planned else None,
            duration_minutes=rng.choice([15, 20, 30, 45, 60]) if kind != ActivityKind.EMAIL else None,
            cost=cost,
            purpose=rng.choice(PURPOSES[kind]),
            outcome="" if planned else rng.choice(OUTCOMES),
            follow_up_title=rng.choice(FOLLOW_UPS) if follow_up else "",
            follow_up_due=day + dt.timedelta(days=rng.randint(3, 14)) if follow_up else None,
        )
        return data


def build(ctx: DemoContext) -> None:
    rng = ctx.rng
    today = timezone.localdate()
    users = ctx.objects["users"]
    liaisons = [users[name] for name in ("liaison", "liaison2", "liaison3")]
    writer = _Writer(ctx, today, unvisited=_left_unvisited(ctx, today))
    territory_of = {
        liaison.pk: list(ReferringPractice.objects.current().filter(liaison=liaison).select_related("tier"))
        for liaison in liaisons
    }
    if ctx.scale.bulk:
        writer.bulk = bulk.ActivityWriter(today)
        attendees = writer.bulk.attendees([p.pk for ps in territory_of.values() for p in ps], writer.unvisited)
        for practice_id, (providers, staff) in attendees.items():
            writer.people[practice_id], writer.staff[practice_id] = providers, staff
    # Three years of done touches, spread over weekdays, the A-tier offices seen most.
    days = ctx.scale.years * 365
    per_liaison = ctx.scale.activities // len(liaisons)
    for liaison in liaisons:
        practices = territory_of[liaison.pk]
        if not practices:
            continue
        # Summed once (rng.choices(practices, weights) sums them on every call: the same draw, quadratic here).
        weights = list(itertools.accumulate(TIER_WEIGHT.get(p.tier.code if p.tier else "C", 1) for p in practices))
        for _ in range(per_liaison):
            practice = rng.choices(practices, cum_weights=weights)[0]
            kind = rng.choices(list(KINDS), list(KINDS.values()))[0]
            day = _weekday(today - dt.timedelta(days=rng.randint(1, days)))
            writer.touch(liaison=liaison, practice=practice, kind=kind, day=day)
        if writer.bulk is not None:
            writer.bulk.flush()
        # The next two weeks, planned: two or three stops a working day.
        for offset in range(1, 15):
            day = today + dt.timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for _ in range(rng.randint(2, 3)):
                kind = rng.choice([ActivityKind.VISIT, ActivityKind.VISIT, ActivityKind.LUNCH, ActivityKind.DROP_OFF])
                writer.touch(
                    liaison=liaison,
                    practice=rng.choices(practices, cum_weights=weights)[0],
                    kind=kind,
                    day=day,
                    planned=True,
                )
        # Today's stops, so the week page has a route to drive.
        for _ in range(4):
            writer.touch(
                liaison=liaison,
                practice=rng.choices(practices, cum_weights=weights)[0],
                kind=ActivityKind.VISIT,
                day=today,
                planned=True,
            )
    near = _near_limit_physician(ctx, writer, territory_of[liaisons[0].pk], liaisons[0], today)
    concerns = _concerns(ctx, liaisons, territory_of, today)
    moved = _reassignments(ctx, liaisons, territory_of)
    thanked = _thank_yous(today)
    ctx.objects["near_limit_physician"] = near
    ctx.count("outreach activities", writer.logged)
    ctx.count("outreach items not bought (over a limit)", writer.refused)
    ctx.count("concerns", concerns)
    ctx.count("territory moves", moved)
    ctx.count("thank-you notes queued", thanked)
    ctx.count("open follow-ups", OutreachTask.objects.open().count())


def _left_unvisited(ctx: DemoContext, today: dt.date) -> set[int]:
    """Half the sources whose first referral is recent, whom no liaison has met yet (the never-visited list)."""
    since = timezone.now() - dt.timedelta(days=OutreachSettings.current().new_source_days - 7)
    newcomers = (
        ReferringProvider.objects.annotate(first=Min("referrals__received_at"))
        .filter(first__gte=since)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return {pk for pk in newcomers if ctx.rng.random() < 0.5}


def _near_limit_physician(ctx: DemoContext, writer: _Writer, practices, liaison, today: dt.date):
    """One A-tier physician this liaison spoils a little: gifts up to ~88% of this year's limit."""
    limit = compliance.limit_amount(today.year)
    if limit is None:
        return None
    candidates = []
    for practice in practices:
        providers, _ = writer.attendees(practice)
        for person in providers:
            if compliance.is_physician(person) and person.tier and person.tier.code == "A":
                candidates.append((compliance.physician_year(person, today.year).total, person.pk, person, practice))
    if not candidates:
        return None
    _, _, physician, practice = min(candidates, key=lambda c: (c[0], c[1]))
    target = (limit * NEAR_LIMIT_SHARE).quantize(compliance.CENT)
    items = ["Netter's orthopaedic atlas", "Holiday fruit basket", "Anatomical shoulder model", "Sports medicine text"]
    for index, item in enumerate(items):
        left = target - compliance.physician_year(physician, today.year).total
        if left <= 0:
            break
        cost = left if index == len(items) - 1 else min(left, (target / len(items)).quantize(compliance.CENT))
        day = _weekday(min(today, dt.date(today.year, 1, 15) + dt.timedelta(days=60 * index)))
        services.activity_log(
            data=services.ActivityInput(
                kind=ActivityKind.GIFT,
                date=day,
                practice=practice,
                providers=[physician],
                liaison=liaison,
                cost=cost,
                purpose=item,
            ),
            by=liaison,
        )
    return physician


def _concerns(ctx: DemoContext, liaisons, territory_of, today: dt.date) -> int:
    rng = ctx.rng
    count = 0
    for liaison in liaisons:
        practices = territory_of[liaison.pk]
        if not practices:
            continue
        for index in range(20):
            practice = rng.choice(practices)
            category, summary, detail = rng.choice(CONCERNS)
            is_open = index < 5
            raised = today - dt.timedelta(
                days=rng.randint(1, 95) if is_open else rng.randint(20, ctx.scale.years * 365)
            )
            concern = services.concern_open(
                practice=practice,
                summary=summary,
                what_happened=detail,
                category=category,
                severity=rng.choice([Severity.LOW, Severity.MEDIUM, Severity.MEDIUM, Severity.HIGH]),
                owner=liaison,
                raised_on=raised,
                due_on=raised + dt.timedelta(days=rng.choice([3, 7, 14])),
                by=liaison,
            )
            if not is_open:
                services.concern_update(
                    concern=concern,
                    changes={"status": ConcernStatus.RESOLVED, "resolution": rng.choice(RESOLUTIONS)},
                    by=liaison,
                    on=min(today, raised + dt.timedelta(days=rng.randint(1, 30))),
                )
            elif index == 1:
                services.concern_update(concern=concern, changes={"status": ConcernStatus.IN_PROGRESS}, by=liaison)
            count += 1
    return count


def _reassignments(ctx: DemoContext, liaisons, territory_of) -> int:
    """Two offices that moved between territories, so the history has something to show."""
    rng = ctx.rng
    moved = 0
    territories = list(Territory.objects.select_related("liaison"))
    for liaison in liaisons[:2]:
        practices = territory_of[liaison.pk]
        if len(practices) < 3 or len(territories) < 2:
            continue
        practice = rng.choice(practices)
        destination = rng.choice([t for t in territories if t.pk != practice.territory_id])
        services.practice_reassign(
            practice=practice, territory=destination, by=ctx.objects["users"]["manager"], note="Rebalanced workloads"
        )
        moved += 1
    return moved


def _thank_yous(today: dt.date) -> int:
    """Thank-you notes the last weeks' referrals call for. Referrals the demo wrote through the services were
    announced and thanked already (the receiver queued them); those written in bulk were not, so they are
    offered to the same service here, which queues each source's milestone once."""
    from refloop.referrals.models import Referral

    since = timezone.now() - dt.timedelta(days=45)
    recent = Referral.objects.filter(received_at__gte=since, referring_provider__isnull=False).select_related(
        "referring_provider", "referring_practice"
    )
    for referral in recent.order_by("received_at", "pk"):
        services.thank_you_queue(referral=referral, today=today)
    return Activity.objects.filter(origin=Origin.AUTO).count()
