"""Bulk paths of the demo at the design scale (25,000 providers, 300,000 activities): the same rows the services
write, inserted with bulk_create in batches instead of one service call at a time.

Through the services the directory alone takes some ten minutes at that scale and the outreach history about an
hour, which makes the benchmark dataset (bench/dataset.py) impractical; in bulk both take about a minute. Each
row gets the values its service gives it (search_text, manual_fields, territory and liaison from the practice,
the ledger split, follow-ups), checked by tests/test_demo_bulk.py against the service path. Left out on purpose,
as in the referrals' bulk path: the audit trail, and items of value in a year with no Stark figure on file (the
services record those under a compliance override by the manager; here they are not bought).
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from django.db.models import Prefetch
from django.utils import timezone

from refloop.demo import DemoContext
from refloop.directory import services as directory_services
from refloop.directory.models import (
    PracticeLocation,
    ProviderPractice,
    ReferringPractice,
    ReferringProvider,
    ReportChannel,
    Source,
    StaffContact,
    Weekday,
)
from refloop.directory.taxonomy import describe

BATCH = 2_000


def directory(ctx: DemoContext, draw_practice, territories) -> tuple[list, list, dict]:
    """Practices with their locations, providers with their primary affiliation, as the services would write
    them; returns (practices, providers, volume). `draw_practice(rng, fake)` gives (practice fields, location
    fields, second location fields or None), the same draws as the service path."""
    from refloop.demo.directory import SPECIALTIES, _npi

    rng, fake = ctx.rng, ctx.fake
    used_npis: set[str] = set()
    practices, locations, seconds = [], [], []
    for _ in range(ctx.scale.referring_practices):
        fields, location, second = draw_practice(rng, fake, used_npis)
        territory = territories[fields.pop("territory_name")]
        practices.append(
            ReferringPractice(
                source=Source.MANUAL,
                territory=territory,
                liaison=territory.liaison,
                manual_fields=["location"],  # location_save by a person, as practice_create(source=manual) does
                **fields,
            )
        )
        locations.append(location)
        seconds.append(second)
    ReferringPractice.objects.bulk_create(practices, batch_size=BATCH)
    rows = []
    for practice, location, second in zip(practices, locations, seconds, strict=True):
        rows.append(PracticeLocation(practice=practice, is_primary=True, **location))
        if second:
            rows.append(PracticeLocation(practice=practice, is_primary=False, **second))
    PracticeLocation.objects.bulk_create(rows, batch_size=BATCH)
    by_practice: dict[int, list[PracticeLocation]] = {}
    for row in rows:
        by_practice.setdefault(row.practice_id, []).append(row)
    for practice in practices:
        practice.search_text = directory_services.practice_search_text(practice, by_practice[practice.pk])
    ReferringPractice.objects.bulk_update(practices, ["search_text"], batch_size=BATCH)

    # Cumulative weights, summed once: rng.choices(practices, weights) would sum them again on every call
    # (the same draw, but quadratic at 25,000 providers in 10,000 practices).
    cumulative = list(itertools.accumulate(rng.paretovariate(1.4) for _ in practices))
    codes, creds, spec_weights = zip(*SPECIALTIES, strict=True)
    channels = [ReportChannel.FAX, ReportChannel.EMAIL, ReportChannel.DIRECT, ReportChannel.PORTAL, ReportChannel.MAIL]
    providers, affiliations, volume_draws = [], [], []
    for index in range(ctx.scale.referring_providers):
        practice = practices[index] if index < len(practices) else rng.choices(practices, cum_weights=cumulative)[0]
        location = by_practice[practice.pk][0]
        pick = rng.choices(range(len(codes)), spec_weights)[0]
        first, last = fake.first_name(), fake.last_name()
        channel = rng.choices(channels, [55, 15, 22, 5, 3])[0]
        office = practice.name.split()[0].lower()
        provider = ReferringProvider(
            npi=_npi(rng, used_npis, "1"),
            first_name=first,
            last_name=last,
            credentials=creds[pick],
            taxonomy_code=codes[pick],
            specialty=describe(codes[pick]),
            address_line1=location.address_line1,
            city=location.city,
            state="OH",
            postal_code=location.postal_code,
            phone=location.phone,
            fax=location.fax,
            report_channel=channel,
            report_email=f"{first[0].lower()}{last.lower()}@{office}.example" if channel == ReportChannel.EMAIL else "",
            direct_address=f"{first[0].lower()}{last.lower()}@direct.{office}.example"
            if channel == ReportChannel.DIRECT
            else "",
            territory=practice.territory,
            liaison=practice.liaison,
            source=rng.choices(["nppes", "manual"], [70, 30])[0],
        )
        provider.search_text = directory_services.provider_search_text(provider)
        days = sorted(rng.sample(Weekday.values[:5], rng.randint(3, 5)), key=directory_services._weekday_order)
        affiliations.append((practice, location, days))
        volume_draws.append(rng.lognormvariate(0, 1.1))
        providers.append(provider)
    ReferringProvider.objects.bulk_create(providers, batch_size=BATCH)
    ProviderPractice.objects.bulk_create(
        [
            ProviderPractice(provider=provider, practice=practice, location=location, days=days, is_primary=True)
            for provider, (practice, location, days) in zip(providers, affiliations, strict=True)
        ],
        batch_size=BATCH,
    )
    volume = {provider.pk: draw for provider, draw in zip(providers, volume_draws, strict=True)}
    return practices, providers, volume


def staff(contacts: list[StaffContact]) -> None:
    StaffContact.objects.bulk_create(contacts, batch_size=BATCH)


class ActivityWriter:
    """Done touches of the past years as rows: the activity, who attended, its ledger rows and its follow-up,
    with the values outreach.services.activity_log (and task_complete for the old follow-ups) would write."""

    def __init__(self, today: dt.date):
        from refloop.outreach import compliance
        from refloop.outreach.models import OutreachSettings

        self.today = today
        self.now = timezone.now()
        self.compliance = compliance
        self.staff_share = OutreachSettings.current().staff_share_meal_cost
        self.limits: dict[int, Decimal | None] = {}
        self.totals: dict[tuple[int, int], Decimal] = {}
        self.pending: list[tuple] = []

    def attendees(self, practice_ids: list[int], unvisited: set[int]) -> dict[int, tuple[list, list]]:
        """Every practice's active providers (less the never-visited) and staff, in three queries."""
        providers = Prefetch(
            "providers",
            queryset=ReferringProvider.objects.filter(is_active=True, merged_into__isnull=True)
            .exclude(pk__in=unvisited)
            .order_by("pk"),
        )
        staff = Prefetch("staff", queryset=StaffContact.objects.filter(is_active=True).order_by("pk"))
        found = {}
        for practice in ReferringPractice.objects.filter(pk__in=practice_ids).prefetch_related(providers, staff):
            found[practice.pk] = (list(practice.providers.all()), list(practice.staff.all()))
        return found

    def limit(self, year: int) -> Decimal | None:
        if year not in self.limits:
            self.limits[year] = self.compliance.limit_amount(year)
        return self.limits[year]

    def add(self, *, fields: dict, who: list, crew: list, follow_up: tuple | None) -> bool:
        """Queue one done activity; False for an item of value the ledger would refuse (it is not bought)."""
        cost = fields["cost"]
        shares = []
        if cost > 0:
            physicians = [p for p in who if self.compliance.is_physician(p)]
            others = len(who) - len(physicians) + len(crew)
            split = self.compliance.split_cost(
                cost=cost, physicians=physicians, others=others, staff_share=self.staff_share
            )
            year = fields["date"].year
            limit = self.limit(year)
            positive = [(p, share) for p, share in split.shares if share > 0]
            if positive and (
                limit is None or any(self.totals.get((p.pk, year), 0) + share > limit for p, share in positive)
            ):
                return False
            for p, share in split.shares:
                self.totals[(p.pk, year)] = self.totals.get((p.pk, year), Decimal("0.00")) + share
            shares = [(p, share, split.shared_by) for p, share in split.shares]
        self.pending.append((fields, who, crew, shares, follow_up))
        if len(self.pending) >= BATCH:
            self.flush()
        return True

    def flush(self) -> None:
        from refloop.outreach.models import Activity, LedgerEntry, OutreachTask, TaskStatus

        if not self.pending:
            return
        activities = [Activity(**fields) for fields, *_ in self.pending]
        Activity.objects.bulk_create(activities, batch_size=BATCH)
        provider_rows, staff_rows, ledger, tasks = [], [], [], []
        for activity, (_fields, who, crew, shares, follow_up) in zip(activities, self.pending, strict=True):
            provider_rows += [
                Activity.providers.through(activity_id=activity.pk, referringprovider_id=p.pk) for p in who
            ]
            staff_rows += [Activity.staff.through(activity_id=activity.pk, staffcontact_id=s.pk) for s in crew]
            item = (activity.purpose or activity.get_kind_display())[:300]
            ledger += [
                LedgerEntry(
                    physician_id=p.pk,
                    activity_id=activity.pk,
                    year=activity.date.year,
                    on=activity.date,
                    amount=share,
                    item=item,
                    shared_by=shared_by,
                    recorded_by_id=activity.created_by_id,
                )
                for p, share, shared_by in shares
            ]
            if follow_up:
                title, due_on, done = follow_up
                tasks.append(
                    OutreachTask(
                        title=title[:200],
                        due_on=due_on,
                        owner_id=activity.liaison_id,
                        activity_id=activity.pk,
                        practice_id=activity.practice_id,
                        created_by_id=activity.created_by_id,
                        status=TaskStatus.DONE if done else TaskStatus.OPEN,
                        done_at=self.now if done else None,
                        done_by_id=activity.liaison_id if done else None,
                    )
                )
        Activity.providers.through.objects.bulk_create(provider_rows, batch_size=BATCH)
        Activity.staff.through.objects.bulk_create(staff_rows, batch_size=BATCH)
        LedgerEntry.objects.bulk_create(ledger, batch_size=BATCH)
        OutreachTask.objects.bulk_create(tasks, batch_size=BATCH)
        self.pending = []
