"""Writes to outreach: activities (with their ledger rows), follow-ups, concerns, territory moves, thank-yous.

The phone form, the week page, the referral signal and the demo all come through these functions, so the
compliance ledger is written by one path whatever logged the activity.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.directory import services as directory_services
from refloop.directory.models import (
    PracticeLocation,
    ReferringPractice,
    ReferringProvider,
    StaffContact,
    Territory,
)
from refloop.outreach import compliance
from refloop.outreach.compliance import GivenAs, PhysicianCheck, Split
from refloop.outreach.models import (
    Activity,
    ActivityKind,
    ActivityStatus,
    Concern,
    ConcernCategory,
    ConcernStatus,
    Origin,
    OutreachSettings,
    OutreachTask,
    Severity,
    TaskKind,
    TaskStatus,
    TerritoryAssignment,
)
from refloop.practice.models import Clinician

log = logging.getLogger(__name__)
MONEY_LIMIT = Decimal("100000.00")


@dataclass(frozen=True)
class Logged:
    """A saved activity and what its items of value did to each physician's year."""

    activity: Activity
    checks: list[PhysicianCheck]

    @property
    def warnings(self) -> list[PhysicianCheck]:
        return [c for c in self.checks if c.level != compliance.Level.OK]


@dataclass
class ActivityInput:
    """What a person (or the demo) says about an activity; checked by `activity_plan` before any write."""

    kind: str
    date: dt.date
    practice: ReferringPractice | None = None
    location: PracticeLocation | None = None
    providers: Sequence[ReferringProvider] = ()
    staff: Sequence[StaffContact] = ()
    clinicians: Sequence[Clinician] = ()
    liaison: Any = None
    status: str | None = None
    start_time: dt.time | None = None
    duration_minutes: int | None = None
    cost: Decimal = Decimal("0.00")
    given_as: str = GivenAs.ITEM
    purpose: str = ""
    talking_points: str = ""
    outcome: str = ""
    follow_up_title: str = ""
    follow_up_due: dt.date | None = None
    follow_up_owner: Any = None


@dataclass(frozen=True)
class Plan:
    """A checked activity input: its status, its split of the cost, and each physician's check."""

    data: ActivityInput
    status: str
    split: Split
    checks: list[PhysicianCheck]


def _status_for(data: ActivityInput, today: dt.date) -> str:
    if data.status:
        return data.status
    return ActivityStatus.PLANNED if data.date > today else ActivityStatus.DONE


def activity_plan(data: ActivityInput, *, activity: Activity | None = None, today: dt.date | None = None) -> Plan:
    """Validate an activity and work out its ledger effect without writing anything (the form's live preview
    calls this too). Raises ValidationError with every problem found."""
    today = today or timezone.localdate()
    errors: dict[str, list[str]] = {}

    def problem(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if data.kind not in ActivityKind.values:
        problem("kind", "Choose what kind of activity this was.")
    status = _status_for(data, today)
    if status not in ActivityStatus.values:
        problem("status", "Choose planned or done.")
    if status == ActivityStatus.DONE and data.date > today:
        problem("date", "An activity that is done cannot be dated in the future: mark it planned.")
    if data.practice is None and not data.providers:
        problem("practice", "Choose the practice (or at least one provider).")
    if data.practice is not None:
        if data.location is not None and data.location.practice_id != data.practice.pk:
            problem("location", "That location belongs to another practice.")
        strangers = [s for s in data.staff if s.practice_id != data.practice.pk]
        if strangers:
            problem("staff", f"{', '.join(map(str, strangers))} work at another practice.")
    elif data.staff:
        problem("staff", "Choose the practice the staff work at.")
    cost = data.cost if data.cost is not None else Decimal("0.00")
    if not isinstance(cost, Decimal):
        problem("cost", "Give the cost in dollars and cents.")
        cost = Decimal("0.00")
    elif cost < 0:
        problem("cost", "The cost cannot be negative.")
    elif cost != cost.quantize(compliance.CENT):
        problem("cost", "Give the cost to the cent.")
    elif cost > MONEY_LIMIT:
        problem("cost", "That cost is too large to be a gift or a meal; check the amount.")
    if cost > 0:
        refusal = compliance.cash_problem(given_as=data.given_as, text=data.purpose)
        if refusal:
            problem("given_as", refusal)
        if not data.providers and not data.staff:
            problem("providers", "Tick who received it: the physicians and staff who attended or were given it.")
        milestone = activity.milestone if activity is not None else None
        if milestone:
            problem(
                "cost",
                "A thank-you for a referral milestone carries no item of value: a gift must not take the volume "
                "or value of referrals into account.",
            )
    elif data.given_as != GivenAs.ITEM:
        problem("given_as", compliance.CASH_REFUSED)
    if data.duration_minutes is not None and not 0 < data.duration_minutes <= 24 * 60:
        problem("duration_minutes", "Give the duration in minutes (at most a day).")
    if data.follow_up_title.strip() and data.follow_up_due is None:
        problem("follow_up_due", "Give the follow-up a due date.")
    if data.follow_up_due is not None and not data.follow_up_title.strip():
        problem("follow_up_title", "Say what the follow-up is.")
    if errors:
        raise ValidationError(errors)
    policy = OutreachSettings.current()
    physicians = [p for p in data.providers if compliance.is_physician(p)]
    others = len(data.providers) - len(physicians) + len(data.staff)
    split = compliance.split_cost(
        cost=cost, physicians=physicians, others=others, staff_share=policy.staff_share_meal_cost
    )
    checks = compliance.ledger_check(
        split=split, year=data.date.year, exclude_activity=activity.pk if activity is not None else None
    )
    return Plan(data=data, status=status, split=split, checks=checks)


def _attach_receipt(activity: Activity, receipt, checked) -> None:
    activity.receipt_sha256 = checked.sha256
    activity.receipt_content_type = checked.content_type
    activity.receipt_name = os.path.basename((receipt.name or "receipt").replace("\\", "/"))[:200] or "receipt"
    activity.receipt.save(activity.receipt_name, receipt, save=False)


def _activity_save(
    activity: Activity, data: ActivityInput, *, by, receipt=None, override_reason: str = "", item: str = ""
) -> Logged:
    plan = activity_plan(data, activity=activity if activity.pk else None)
    if receipt is not None:
        from refloop.referrals.uploads import check_upload

        try:
            checked = check_upload(receipt)
        except ValidationError as exc:
            raise ValidationError({"receipt": exc.messages}) from None
    with transaction.atomic():
        activity.kind = data.kind
        activity.status = plan.status
        activity.date = data.date
        activity.start_time = data.start_time
        activity.duration_minutes = data.duration_minutes
        activity.practice = data.practice
        activity.location = data.location
        activity.liaison = data.liaison or activity.liaison or (by if getattr(by, "pk", None) else None)
        activity.cost = data.cost or Decimal("0.00")
        activity.purpose = data.purpose.strip()[:300]
        activity.talking_points = data.talking_points.strip()
        activity.outcome = data.outcome.strip()
        activity.full_clean(exclude=["receipt", "created_by", "liaison", "referral", "thanked_provider"])
        activity.save()
        activity.providers.set(data.providers)
        activity.staff.set(data.staff)
        activity.clinicians.set(data.clinicians)
        if plan.status == ActivityStatus.DONE:
            checks = compliance.ledger_write(
                activity=activity, split=plan.split, by=by, override_reason=override_reason, item=item
            )
        else:
            compliance.ledger_clear(activity=activity, by=by)
            checks = plan.checks
        if receipt is not None:  # stored last, so a refused item leaves no file behind
            _attach_receipt(activity, receipt, checked)
            activity.save(update_fields=["receipt", "receipt_name", "receipt_content_type", "receipt_sha256"])
        if data.follow_up_title.strip():
            task_create(
                title=data.follow_up_title,
                due_on=data.follow_up_due,
                owner=data.follow_up_owner or activity.liaison,
                activity=activity,
                practice=activity.practice,
                by=by,
            )
    return Logged(activity, checks)


def activity_log(*, data: ActivityInput, by, receipt=None, override_reason: str = "", item: str = "") -> Logged:
    """Log a touch (done, or planned for a later date); items of value go to the compliance ledger.

    Refused (ValidationError, or compliance.LimitRefused naming each physician) when the input is wrong, when
    what was given is cash or a gift card, or when it takes a physician over the year's Stark limit without a
    compliance override and its reason.
    """
    return _activity_save(
        Activity(created_by=by if getattr(by, "pk", None) else None, origin=Origin.MANUAL),
        data,
        by=by,
        receipt=receipt,
        override_reason=override_reason,
        item=item,
    )


def activity_update(*, activity: Activity, data: ActivityInput, by, receipt=None, override_reason: str = "") -> Logged:
    """Change an activity (a planned visit done, a corrected cost); its ledger rows are rewritten to match."""
    with transaction.atomic():
        current = Activity.objects.select_for_update().get(pk=activity.pk)
        if current.status == ActivityStatus.CANCELLED:
            raise ValidationError("This activity was cancelled; log a new one instead.")
        return _activity_save(current, data, by=by, receipt=receipt, override_reason=override_reason)


def activity_input(activity: Activity, **changes: Any) -> ActivityInput:
    """The input that would save `activity` as it is, with `changes` applied (for edits and completion)."""
    data = ActivityInput(
        kind=activity.kind,
        date=activity.date,
        practice=activity.practice,
        location=activity.location,
        providers=list(activity.providers.all()),
        staff=list(activity.staff.all()),
        clinicians=list(activity.clinicians.all()),
        liaison=activity.liaison,
        status=activity.status,
        start_time=activity.start_time,
        duration_minutes=activity.duration_minutes,
        cost=activity.cost,
        purpose=activity.purpose,
        talking_points=activity.talking_points,
        outcome=activity.outcome,
    )
    for name, value in changes.items():
        setattr(data, name, value)
    return data


def activity_cancel(*, activity: Activity, by) -> Activity:
    """A planned activity that will not happen. Done ones stay: they happened, and the ledger says so."""
    with transaction.atomic():
        current = Activity.objects.select_for_update().get(pk=activity.pk)
        if current.status != ActivityStatus.PLANNED:
            raise ValidationError("Only a planned activity can be cancelled.")
        current.status = ActivityStatus.CANCELLED
        current.save(update_fields=["status", "updated_at"])
        current.follow_ups.filter(status=TaskStatus.OPEN, kind=TaskKind.THANK_YOU).update(status=TaskStatus.CANCELLED)
    return current


# Follow-ups


def task_create(
    *,
    title: str,
    due_on: dt.date,
    owner,
    by,
    activity: Activity | None = None,
    practice: ReferringPractice | None = None,
    provider: ReferringProvider | None = None,
    kind: str = TaskKind.FOLLOW_UP,
) -> OutreachTask:
    if not title.strip() or due_on is None:
        raise ValidationError("A follow-up needs what to do and a due date.")
    return OutreachTask.objects.create(
        kind=kind,
        title=title.strip()[:200],
        due_on=due_on,
        owner=owner if getattr(owner, "pk", None) else None,
        activity=activity,
        practice=practice,
        provider=provider,
        created_by=by if getattr(by, "pk", None) else None,
    )


def task_complete(*, task: OutreachTask, by) -> OutreachTask:
    with transaction.atomic():
        current = OutreachTask.objects.select_for_update().get(pk=task.pk)
        if current.status == TaskStatus.OPEN:
            current.status = TaskStatus.DONE
            current.done_at = timezone.now()
            current.done_by = by if getattr(by, "pk", None) else None
            current.save(update_fields=["status", "done_at", "done_by"])
    return current


# Concerns


def concern_open(
    *,
    practice: ReferringPractice,
    summary: str,
    by,
    category: str = ConcernCategory.COMPLAINT,
    severity: str = Severity.MEDIUM,
    what_happened: str = "",
    owner=None,
    due_on: dt.date | None = None,
    provider: ReferringProvider | None = None,
    raised_by: StaffContact | None = None,
    raised_on: dt.date | None = None,
) -> Concern:
    """Log what a referring office complained about, asked or requested; it stays open until resolved."""
    concern = Concern(
        practice=practice,
        provider=provider,
        raised_by=raised_by,
        category=category,
        severity=severity,
        summary=(summary or "").strip(),
        what_happened=(what_happened or "").strip(),
        owner=owner or practice.liaison or (by if getattr(by, "pk", None) else None),
        raised_on=raised_on or timezone.localdate(),
        due_on=due_on,
        created_by=by if getattr(by, "pk", None) else None,
    )
    _concern_validate(concern)
    concern.save()
    return concern


def _concern_validate(concern: Concern) -> None:
    errors: dict[str, str] = {}
    if not concern.summary:
        errors["summary"] = "Say in a line what the office raised."
    if concern.raised_by is not None and concern.raised_by.practice_id != concern.practice_id:
        errors["raised_by"] = "That staff contact works at another practice."
    if concern.raised_on and concern.raised_on > timezone.localdate():
        errors["raised_on"] = "The date raised is in the future."
    if concern.due_on and concern.raised_on and concern.due_on < concern.raised_on:
        errors["due_on"] = "The due date is before the date it was raised."
    if concern.status == ConcernStatus.RESOLVED and not concern.resolution.strip():
        errors["resolution"] = "Say how it was resolved."
    if errors:
        raise ValidationError(errors)
    concern.full_clean(exclude=["owner", "created_by", "resolved_by"])


CONCERN_EDITABLE = (
    "category",
    "severity",
    "summary",
    "what_happened",
    "owner",
    "due_on",
    "status",
    "resolution",
    "provider",
)


def concern_update(*, concern: Concern, changes: dict[str, Any], by, on: dt.date | None = None) -> Concern:
    """Work a concern: reassign, change its due date, resolve it with what was done (or reopen it).
    `on` is the day it was resolved when that was not today (a liaison catching up on yesterday's call)."""
    unknown = set(changes) - set(CONCERN_EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        current = Concern.objects.select_for_update().get(pk=concern.pk)
        was_open = current.is_open
        for name, value in changes.items():
            setattr(current, name, value.strip() if isinstance(value, str) else value)
        if current.status == ConcernStatus.RESOLVED and was_open:
            current.resolved_on = on or timezone.localdate()
            if current.resolved_on > timezone.localdate() or current.resolved_on < current.raised_on:
                raise ValidationError("A concern is resolved between the day it was raised and today.")
            current.resolved_by = by if getattr(by, "pk", None) else None
        elif current.is_open:
            current.resolved_on = None
            current.resolved_by = None
        _concern_validate(current)
        current.save()
    return current


# Territories


def practice_reassign(
    *, practice: ReferringPractice, territory: Territory | None, by, liaison=None, note: str = ""
) -> TerritoryAssignment:
    """Move a practice (and the providers whose primary office it is) to another territory and liaison.

    The move is recorded, so the practice's history says who looked after it when; a liaison's results can
    then be read against the offices they held at the time.
    """
    new_liaison = liaison if liaison is not None else (territory.liaison if territory is not None else None)
    with transaction.atomic():
        current = (
            ReferringPractice.objects.select_for_update(of=("self",))
            .select_related("territory", "liaison")
            .get(pk=practice.pk)
        )
        if current.territory_id == (territory.pk if territory else None) and current.liaison_id == (
            new_liaison.pk if new_liaison else None
        ):
            raise ValidationError("The practice is already in that territory with that liaison.")
        record = TerritoryAssignment.objects.create(
            practice=current,
            from_territory=current.territory,
            to_territory=territory,
            from_territory_name=current.territory.name if current.territory else "",
            to_territory_name=territory.name if territory else "",
            from_liaison=current.liaison,
            to_liaison=new_liaison,
            by=by if getattr(by, "pk", None) else None,
            note=(note or "").strip()[:300],
        )
        old_territory_id = current.territory_id
        directory_services.practice_update(practice=current, changes={"territory": territory, "liaison": new_liaison})
        movers = ReferringProvider.objects.filter(affiliations__practice=current, affiliations__is_primary=True).filter(
            Q(territory_id=old_territory_id) | Q(territory__isnull=True)
        )
        for provider in movers.distinct():
            directory_services.provider_update(
                provider=provider, changes={"territory": territory, "liaison": new_liaison}
            )
        audit_record(
            actor=by,
            action="outreach.reassign",
            target=current,
            detail={"from": record.from_territory_name, "to": record.to_territory_name, "note": record.note},
        )
    return record


# Gratitude


def referral_ordinal(referral, *, up_to: int | None = None) -> int:
    """Which referral from its provider this is (1 = the first), counted in order of receipt; with `up_to`, counting
    stops there (a source with years of referrals costs no more than a new one: every intake asks, issue 8)."""
    # Plain SQL: every intake asks, and the ORM's sliced count (a subquery) cost more CPU than the count (issue 8).
    received = connection.ops.adapt_datetimefield_value(referral.received_at)  # as the ORM sends a datetime
    with connection.cursor() as cursor:
        cursor.execute(
            _ordinal_sql(bool(up_to)),
            [referral.referring_provider_id, received, received, referral.pk, *([up_to] if up_to else [])],
        )
        return cursor.fetchone()[0]


@functools.cache
def _ordinal_sql(limited: bool) -> str:
    from refloop.referrals.models import Referral

    q = connection.ops.quote_name
    earlier = (
        f"SELECT 1 FROM {q(Referral._meta.db_table)} WHERE {q('referring_provider_id')} = %s "  # noqa: S608
        f"AND ({q('received_at')} < %s OR ({q('received_at')} = %s AND {q('id')} <= %s))"
    )
    return f"SELECT COUNT(*) FROM ({earlier}{' LIMIT %s' if limited else ''}) earlier"  # noqa: S608


def _milestones(policy: OutreachSettings) -> set[int]:
    return {int(m) for m in policy.thank_you_milestones or [] if str(m).isdigit()}


def thank_you_due(ordinal: int, policy: OutreachSettings) -> bool:
    if ordinal == 1:
        return policy.thank_you_on_first_referral
    return ordinal in _milestones(policy)


def thank_you_queue(*, referral, today: dt.date | None = None) -> Activity | None:
    """Queue a thank-you note when a referral is its source's first or a milestone (10th, 25th...).

    The note is a planned thank-you activity naming the provider, the referral and the count, with a task for
    the liaison who owns the relationship; the letters app renders it from those fields. It carries no item of
    value (a gift for referral volume is exactly what Stark forbids). Queued once per source and milestone.
    """
    provider = referral.referring_provider
    if provider is None:
        return None
    policy = OutreachSettings.recent()
    ordinal = referral_ordinal(referral, up_to=max(_milestones(policy), default=1) + 1)
    if not thank_you_due(ordinal, policy):
        return None
    today = today or timezone.localdate()
    practice = referral.referring_practice
    owner = provider.liaison or (practice.liaison if practice else None)
    label = "first referral" if ordinal == 1 else f"{_ordinal_word(ordinal)} referral"
    try:
        with transaction.atomic():
            activity = Activity.objects.create(
                kind=ActivityKind.THANK_YOU,
                status=ActivityStatus.PLANNED,
                date=today,
                practice=practice,
                liaison=owner,
                origin=Origin.AUTO,
                thanked_provider=provider,
                referral=referral,
                milestone=ordinal,
                purpose=f"Thank {provider.display_name} for their {label}",
            )
            activity.providers.set([provider])
            task_create(
                kind=TaskKind.THANK_YOU,
                title=f"Send a thank-you note to {provider.display_name} ({label})",
                due_on=today + dt.timedelta(days=policy.thank_you_due_days),
                owner=owner,
                activity=activity,
                practice=practice,
                provider=provider,
                by=None,
            )
    except IntegrityError:
        return None  # already queued for this milestone (the same referral announced twice)
    return activity


def _ordinal_word(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# Settings


def outreach_settings_update(*, changes: dict[str, Any], by) -> OutreachSettings:
    with transaction.atomic():
        current = OutreachSettings.current()
        before = {name: getattr(current, name) for name in changes}
        for name, value in changes.items():
            setattr(current, name, value)
        current.full_clean()
        current.save()
        audit_record(
            actor=by,
            action="outreach.settings",
            target=current,
            detail={"before": {k: str(v) for k, v in before.items()}, "after": {k: str(v) for k, v in changes.items()}},
        )
    return current
