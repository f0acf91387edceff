"""The Stark compliance ledger: non-monetary compensation to referring physicians (42 CFR 411.357(k)).

Each item of value a physician receives (a gift, their share of a lunch, a seat at an event) is one ledger row
for the calendar year it was given. The year's total per physician is checked against that year's limit: at
the warning threshold (80% by default) the liaison is told; above the limit the item is refused unless a
compliance role records an override with a reason, which is audited. A year with no figure on file is never
estimated: it is flagged, and items in it need the same override. Cash and cash equivalents (gift cards) are
refused outright. An overage of up to 50% of the limit can be cured by the physician repaying it by the
earlier of the end of the calendar year and 180 days after receipt, at most once every three years.

Writes here are services (keyword-only, `<noun>_<verb>`), called by outreach.services for activities and by
the compliance pages; reads that summarize a year are alongside them so the rule lives in one module.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.directory.models import ReferringProvider
from refloop.outreach.allocation import CENT, from_cents, split_cents, to_cents
from refloop.outreach.models import (
    Activity,
    ComplianceOverride,
    LedgerEntry,
    LimitSource,
    OutreachSettings,
    Repayment,
    StarkLimit,
)

# Stark's "physician": doctors of medicine or osteopathy, dentists, podiatrists, optometrists, chiropractors.
PHYSICIAN_DEGREES = frozenset({"MD", "DO", "DDS", "DMD", "DPM", "OD", "DC"})
CURE_DAYS = 180
CURE_SHARE = Decimal("0.5")
CURE_EVERY_YEARS = 3
ZERO = Decimal("0.00")


class GivenAs(models.TextChoices):
    ITEM = "item", "Item or service (meal, gift, book, event)"
    CASH = "cash", "Cash"
    CASH_EQUIVALENT = "cash_equivalent", "Gift card or other cash equivalent"


# Words in a description that mean cash or a cash equivalent, whatever box was ticked.
_CASH_WORDS = re.compile(
    r"\b(gift\s*-?\s*cards?|gift\s+certificates?|gift\s+vouchers?|e-?gift|prepaid\s+cards?|cash|visa\s+cards?)\b",
    re.IGNORECASE,
)

CASH_REFUSED = (
    "Cash and cash equivalents such as gift cards may never be given to a referring physician "
    "(42 CFR 411.357(k)); give an item or a service instead."
)


def is_physician(provider: ReferringProvider) -> bool:
    """Whether Stark counts this provider as a physician, read from the credentials (M.D., DO, DDS...)."""
    tokens = re.findall(r"[A-Z]+", (provider.credentials or "").upper().replace(".", ""))
    return any(token in PHYSICIAN_DEGREES for token in tokens)


def cash_problem(*, given_as: str, text: str) -> str:
    """The refusal message when what was given is cash or a cash equivalent, else ''."""
    if given_as != GivenAs.ITEM or _CASH_WORDS.search(text or ""):
        return CASH_REFUSED
    return ""


def limit_for(year: int) -> StarkLimit | None:
    return StarkLimit.objects.filter(year=year).first()


def limit_amount(year: int) -> Decimal | None:
    row = limit_for(year)
    return row.amount if row is not None else None


class Level(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    OVER = "over"
    NO_LIMIT = "no_limit"


def level_of(total: Decimal, limit: Decimal | None, warn_percent: int) -> Level:
    if limit is None:
        return Level.NO_LIMIT if total > 0 else Level.OK
    if total > limit:
        return Level.OVER
    if limit > 0 and total * 100 >= limit * warn_percent:
        return Level.WARN
    return Level.OK


def percent_of(total: Decimal, limit: Decimal | None) -> Decimal | None:
    if not limit:
        return None
    return (total * 100 / limit).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PhysicianCheck:
    """One physician's year before and after an item: what the liaison sees while logging it."""

    physician: ReferringProvider
    year: int
    before: Decimal
    share: Decimal
    limit: Decimal | None
    warn_percent: int

    @property
    def after(self) -> Decimal:
        return self.before + self.share

    @property
    def percent(self) -> Decimal | None:
        return percent_of(self.after, self.limit)

    @property
    def level(self) -> Level:
        return level_of(self.after, self.limit, self.warn_percent)

    @property
    def needs_override(self) -> bool:
        return self.share > 0 and self.level in (Level.OVER, Level.NO_LIMIT)

    @property
    def message(self) -> str:
        name = self.physician.display_name
        if self.level == Level.NO_LIMIT:
            return (
                f"{name}: no Stark limit is on file for {self.year}. The figure is never assumed: an administrator "
                "must enter it, or a compliance role must record an override with a reason."
            )
        if self.level == Level.OVER:
            return (
                f"{name} would reach ${self.after:,} in {self.year}, over the ${self.limit:,} limit "
                f"by ${self.after - self.limit:,}."
            )
        if self.level == Level.WARN:
            return f"{name} reaches ${self.after:,} in {self.year}: {self.percent}% of the ${self.limit:,} limit."
        return ""


class LimitRefused(ValidationError):
    """The item would take a physician over the year's limit (or into a year with no figure)."""

    def __init__(self, checks: Sequence[PhysicianCheck], *, allowed_to_override: bool):
        self.checks = list(checks)
        blocked = [c for c in checks if c.needs_override]
        tail = (
            " Record an override with the reason to go ahead."
            if allowed_to_override
            else " Only a compliance role (a manager or an administrator) can record an override with a reason."
        )
        super().__init__(" ".join(c.message for c in blocked) + tail)


@dataclass(frozen=True)
class Split:
    """How an item's cost is shared: each physician's part, and how many people shared it."""

    shares: list[tuple[ReferringProvider, Decimal]]
    shared_by: int


def split_cost(*, cost: Decimal, physicians: Sequence[ReferringProvider], others: int, staff_share: bool) -> Split:
    """Share `cost` among the physicians who received it, and the other attendees when the policy says so.

    Physicians come first, so when the cents do not divide evenly the odd cents fall to them (the cautious
    side of the ledger); the parts always add up to the cost exactly.
    """
    physicians = sorted(physicians, key=lambda p: p.pk)
    if cost <= 0 or not physicians:
        return Split([], 0)
    count = len(physicians) + (others if staff_share else 0)
    parts = split_cents(to_cents(cost), [1] * count)
    return Split([(p, from_cents(c)) for p, c in zip(physicians, parts, strict=False)], count)


def to_cent(total: Decimal | None) -> Decimal:
    """A database SUM back to exact cents. PostgreSQL sums numeric exactly; SQLite sums in floating point and
    hands back up to 15 significant digits, so the float noise (far below a cent for any ledger) is rounded
    off here, before any total is compared with a limit."""
    return (total or ZERO).quantize(CENT, rounding=ROUND_HALF_UP)


def year_totals(physician_ids: Iterable[int], year: int, *, exclude_activity: int | None = None) -> dict[int, Decimal]:
    rows = LedgerEntry.objects.filter(physician_id__in=list(physician_ids), year=year)
    if exclude_activity is not None:
        rows = rows.exclude(activity_id=exclude_activity)
    return {
        row["physician_id"]: to_cent(row["total"]) for row in rows.values("physician_id").annotate(total=Sum("amount"))
    }


def ledger_check(*, split: Split, year: int, exclude_activity: int | None = None) -> list[PhysicianCheck]:
    """Each physician's year total before and after their share, against the year's limit."""
    if not split.shares:
        return []
    limit = limit_amount(year)
    warn = OutreachSettings.current().warn_percent
    totals = year_totals([p.pk for p, _ in split.shares], year, exclude_activity=exclude_activity)
    return [
        PhysicianCheck(
            physician=p, year=year, before=totals.get(p.pk, ZERO), share=share, limit=limit, warn_percent=warn
        )
        for p, share in split.shares
    ]


def ledger_write(
    *, activity: Activity, split: Split, by, override_reason: str = "", item: str = ""
) -> list[PhysicianCheck]:
    """Replace the activity's ledger rows with `split`, refusing what the limit forbids. Run inside the
    caller's transaction: the physicians' rows are locked so two lunches logged at once cannot both slip
    under a limit that only one of them fits."""
    ids = sorted(p.pk for p, _ in split.shares)
    if ids:
        list(ReferringProvider.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))
    checks = ledger_check(split=split, year=activity.date.year, exclude_activity=activity.pk)
    blocked = [c for c in checks if c.needs_override]
    may_override = by is not None and getattr(by, "can", lambda _a: False)("compliance.override")
    reason = (override_reason or "").strip()
    if blocked and not (may_override and reason):
        raise LimitRefused(checks, allowed_to_override=may_override)
    previous = {e.physician_id: e.amount for e in activity.ledger_entries.all()}
    activity.ledger_entries.all().delete()
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                physician=p,
                activity=activity,
                year=activity.date.year,
                on=activity.date,
                amount=share,
                item=(item or activity.purpose or activity.get_kind_display())[:300],
                shared_by=split.shared_by,
                recorded_by=by if getattr(by, "pk", None) else None,
            )
            for p, share in split.shares
        ]
    )
    current = {p.pk: share for p, share in split.shares}
    if previous and previous != current:
        audit_record(
            actor=by,
            action="compliance.ledger_change",
            target=activity,
            detail={
                "before": {str(k): str(v) for k, v in previous.items()},
                "after": {str(k): str(v) for k, v in current.items()},
            },
        )
    for check in blocked:
        override = ComplianceOverride.objects.create(
            activity=activity,
            physician=check.physician,
            year=check.year,
            reason=reason,
            total_after=check.after,
            limit=check.limit,
            by=by,
        )
        audit_record(
            actor=by,
            action="compliance.override",
            target=override,
            detail={
                "activity": activity.pk,
                "physician": check.physician.pk,
                "year": check.year,
                "total_after": str(check.after),
                "limit": str(check.limit) if check.limit is not None else None,
                "reason": reason,
            },
        )
    return checks


def ledger_clear(*, activity: Activity, by) -> None:
    """An activity that is no longer done gives nothing: its ledger rows go (audited when there were any)."""
    previous = list(activity.ledger_entries.values_list("physician_id", "amount"))
    if previous:
        activity.ledger_entries.all().delete()
        audit_record(
            actor=by,
            action="compliance.ledger_change",
            target=activity,
            detail={"before": {str(k): str(v) for k, v in previous}, "after": {}},
        )


# Limits


def stark_limit_set(
    *,
    year: int,
    amount: Decimal,
    by,
    source_note: str,
    incidental_per_occurrence: Decimal | None = None,
    limited_remuneration: Decimal | None = None,
) -> StarkLimit:
    """An administrator enters or corrects a year's figure; the old and new values go to the audit trail."""
    if not getattr(by, "can", lambda _a: False)("compliance.limits"):
        raise PermissionDenied("Only an administrator may set the Stark limits.")
    errors = {}
    if amount is None or amount <= 0:
        errors["amount"] = "Give the year's limit in dollars."
    elif amount != amount.quantize(CENT):
        errors["amount"] = "Give the limit to the cent."
    if not (source_note or "").strip():
        errors["source_note"] = "Say where the figure comes from (the CMS page, the Federal Register notice...)."
    if not 1990 <= year <= 2200:
        errors["year"] = "Give a calendar year."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        row, created = StarkLimit.objects.select_for_update().get_or_create(year=year)
        before = {
            "amount": str(row.amount) if row.amount is not None else None,
            "source": row.source,
            "source_note": row.source_note,
        }
        if created or row.amount != amount:
            row.source = LimitSource.ADMIN
        row.amount = amount
        row.incidental_per_occurrence = incidental_per_occurrence
        row.limited_remuneration = limited_remuneration
        row.source_note = source_note.strip()
        row.updated_by = by
        row.save()
        audit_record(
            actor=by,
            action="compliance.limit_set",
            target=row,
            detail={"year": year, "before": before, "after": {"amount": str(amount), "source_note": row.source_note}},
        )
    return row


# Repayment (the 50% cure)


def _first_over(physician: ReferringProvider, year: int, limit: Decimal) -> dt.date | None:
    running = ZERO
    for on, amount in (
        LedgerEntry.objects.filter(physician=physician, year=year).order_by("on", "pk").values_list("on", "amount")
    ):
        running += amount
        if running > limit:
            return on
    return None


def cure_deadline(year: int, received_on: dt.date) -> dt.date:
    return min(dt.date(year, 12, 31), received_on + dt.timedelta(days=CURE_DAYS))


def repayment_record(
    *,
    physician: ReferringProvider,
    year: int,
    amount: Decimal,
    repaid_on: dt.date,
    by,
    received_on: dt.date | None = None,
    note: str = "",
    today: dt.date | None = None,
) -> Repayment:
    """Record that a physician repaid an overage, checking every condition of the cure before accepting it."""
    if not getattr(by, "can", lambda _a: False)("compliance.override"):
        raise PermissionDenied("Only a compliance role may record a repayment.")
    today = today or timezone.localdate()
    limit = limit_amount(year)
    if limit is None:
        raise ValidationError(f"No Stark limit is on file for {year}: enter the year's figure first.")
    total = year_totals([physician.pk], year).get(physician.pk, ZERO)
    overage = total - limit
    if overage <= 0:
        raise ValidationError(f"{physician.display_name} is not over the {year} limit: there is nothing to repay.")
    if overage > limit * CURE_SHARE:
        raise ValidationError(
            f"The overage (${overage:,}) is more than 50% of the limit (${limit * CURE_SHARE:,.2f}): "
            "the repayment cure does not apply."
        )
    received_on = received_on or _first_over(physician, year, limit)
    errors: dict[str, str] = {}
    if amount is None or amount < overage:
        errors["amount"] = f"The physician must repay the whole excess, ${overage:,}."
    if repaid_on > today:
        errors["repaid_on"] = "The repayment date is in the future."
    elif received_on and repaid_on < received_on:
        errors["repaid_on"] = "The repayment cannot come before the item was received."
    elif received_on and repaid_on > cure_deadline(year, received_on):
        errors["repaid_on"] = (
            f"Too late for the cure: it had to be repaid by {cure_deadline(year, received_on):%b %d, %Y} "
            "(the end of the year or 180 days after receipt, whichever is earlier)."
        )
    recent = (
        Repayment.objects.filter(
            physician=physician, year__gt=year - CURE_EVERY_YEARS, year__lt=year + CURE_EVERY_YEARS
        )
        .order_by("year")
        .first()
    )
    if recent is not None:
        errors["year"] = (
            f"{physician.display_name} already used the repayment cure for {recent.year}: "
            "it may be used at most once every three years."
        )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        repayment = Repayment.objects.create(
            physician=physician,
            year=year,
            amount=amount,
            received_on=received_on or repaid_on,
            repaid_on=repaid_on,
            note=note.strip()[:300],
            recorded_by=by,
        )
        audit_record(
            actor=by,
            action="compliance.repayment",
            target=repayment,
            detail={"physician": physician.pk, "year": year, "amount": str(amount), "overage": str(overage)},
        )
    return repayment


# Reads


@dataclass(frozen=True)
class PhysicianYear:
    """A physician's calendar year in the ledger, as the compliance page and the yearly report show it."""

    physician: ReferringProvider
    year: int
    total: Decimal
    items: int
    limit: Decimal | None
    warn_percent: int
    overrides: int
    repayment: Repayment | None

    @property
    def percent(self) -> Decimal | None:
        return percent_of(self.total, self.limit)

    @property
    def level(self) -> Level:
        return level_of(self.total, self.limit, self.warn_percent)

    @property
    def overage(self) -> Decimal:
        return max(ZERO, self.total - self.limit) if self.limit is not None else ZERO

    @property
    def remaining(self) -> Decimal | None:
        return max(ZERO, self.limit - self.total) if self.limit is not None else None

    @property
    def status(self) -> str:
        if self.level == Level.NO_LIMIT:
            return f"No limit on file for {self.year}"
        if self.level == Level.OVER:
            if self.repayment is not None:
                return f"Over by ${self.overage:,}; cured by repayment on {self.repayment.repaid_on:%b %d, %Y}"
            curable = self.limit is not None and self.overage <= self.limit * CURE_SHARE
            return f"Over by ${self.overage:,}" + ("; repayment cure possible" if curable else "")
        if self.level == Level.WARN:
            return f"At {self.percent}% of the limit"
        return "Within the limit"


def year_summary(year: int, *, physicians: Iterable[int] | None = None) -> list[PhysicianYear]:
    """Every physician with ledger rows in `year` (or those asked for), the highest total first."""
    rows = LedgerEntry.objects.filter(year=year)
    if physicians is not None:
        rows = rows.filter(physician_id__in=list(physicians))
    totals = list(rows.values("physician_id").annotate(total=Sum("amount"), items=Count("id")).order_by("-total"))
    ids = [row["physician_id"] for row in totals]
    people = ReferringProvider.objects.in_bulk(ids)
    overrides = dict(
        ComplianceOverride.objects.filter(year=year, physician_id__in=ids)
        .values("physician_id")
        .annotate(n=Count("id"))
        .values_list("physician_id", "n")
    )
    repayments = {r.physician_id: r for r in Repayment.objects.filter(year=year, physician_id__in=ids)}
    limit = limit_amount(year)
    warn = OutreachSettings.current().warn_percent
    summary = [
        PhysicianYear(
            physician=people[row["physician_id"]],
            year=year,
            total=to_cent(row["total"]),
            items=row["items"],
            limit=limit,
            warn_percent=warn,
            overrides=overrides.get(row["physician_id"], 0),
            repayment=repayments.get(row["physician_id"]),
        )
        for row in totals
    ]
    summary.sort(key=lambda s: (-s.total, s.physician.last_name, s.physician.pk))
    return summary


def physician_year(physician: ReferringProvider, year: int) -> PhysicianYear:
    found = year_summary(year, physicians=[physician.pk])
    if found:
        return found[0]
    return PhysicianYear(
        physician=physician,
        year=year,
        total=ZERO,
        items=0,
        limit=limit_amount(year),
        warn_percent=OutreachSettings.current().warn_percent,
        overrides=0,
        repayment=Repayment.objects.filter(physician=physician, year=year).first(),
    )


def years_on_file() -> list[int]:
    """The years the compliance page offers: every year with a figure or a ledger row, and this one."""
    years = set(StarkLimit.objects.values_list("year", flat=True))
    years |= set(LedgerEntry.objects.values_list("year", flat=True).distinct())
    years.add(timezone.localdate().year)
    return sorted(years, reverse=True)
