"""The demo practice's referral network: ~600 referring providers in ~250 practices around Columbus, Ohio,
with office staff, other sources, tiers by volume, and a few planted duplicates for the merge page."""

from __future__ import annotations

import datetime as dt
import importlib
import itertools

from refloop.demo import DemoContext, bulk
from refloop.directory import services
from refloop.directory.models import (
    ContactPreference,
    OtherSource,
    OtherSourceKind,
    ProviderPractice,
    ReferringPractice,
    ReferringProvider,
    ReportChannel,
    StaffContact,
    StaffRole,
    Territory,
    Tier,
    Weekday,
)
from refloop.directory.taxonomy import describe
from refloop.lib.npi import make_npi

# (city, ZIP codes, territory)
PLACES = [
    ("Westerville", ["43081", "43082"], "North"),
    ("Delaware", ["43015"], "North"),
    ("Lewis Center", ["43035"], "North"),
    ("Powell", ["43065"], "North"),
    ("Dublin", ["43016", "43017"], "West"),
    ("Hilliard", ["43026"], "West"),
    ("Marysville", ["43040"], "West"),
    ("Plain City", ["43064"], "West"),
    ("Columbus", ["43201", "43205", "43209", "43214", "43215", "43220", "43221", "43235"], "Central & South"),
    ("Grove City", ["43123"], "Central & South"),
    ("Canal Winchester", ["43110"], "Central & South"),
    ("Reynoldsburg", ["43068"], "Central & South"),
    ("Gahanna", ["43230"], "Central & South"),
]

# (taxonomy code, credentials, weight): who refers to an orthopaedic practice
SPECIALTIES = [
    ("207Q00000X", "MD", 24),
    ("207Q00000X", "DO", 10),
    ("207R00000X", "MD", 18),
    ("363LF0000X", "NP", 12),
    ("363A00000X", "PA-C", 6),
    ("208000000X", "MD", 5),
    ("207QS0010X", "MD", 4),
    ("111N00000X", "DC", 5),
    ("225100000X", "PT, DPT", 3),
    ("213E00000X", "DPM", 2),
    ("207P00000X", "MD", 3),
    ("207RR0500X", "MD", 2),
    ("2084N0400X", "MD", 1),
    ("207V00000X", "MD", 2),
    ("208100000X", "DO", 1),
]

PRACTICE_NAMES = [
    "{surname} Family Medicine",
    "{city} Primary Care",
    "{surname} & {surname2} Internal Medicine",
    "{city} Family Physicians",
    "Olentangy {kind}",
    "Scioto {kind}",
    "Buckeye {kind}",
    "Mid-Ohio {kind}",
    "{surname} Chiropractic",
    "{city} Pediatrics",
    "Central Ohio {kind}",
    "{surname} Medical Group",
    "Big Walnut {kind}",
    "Alum Creek {kind}",
    "Darby Creek {kind}",
    "{city} Urgent Care",
]
KINDS = [
    "Family Practice",
    "Primary Care",
    "Internal Medicine",
    "Health Partners",
    "Physicians",
    "Medical Associates",
]
INTERESTS = [
    "Buckeyes football on Saturdays",
    "oat-milk latte, no sugar",
    "two kids in travel soccer",
    "gluten-free",
    "training for the Columbus marathon",
    "gardening, especially tomatoes",
    "loves dark chocolate",
    "new grandmother",
    "dog person (two labs)",
    "vegetarian",
    "Clippers season tickets",
    "quilting",
    "prefers calls after 2 pm",
    "just bought a house in Powell",
    "coffee from Stauf's",
]
STREETS = [
    "N High St",
    "Polaris Pkwy",
    "Sawmill Rd",
    "Tuttle Crossing Blvd",
    "Hamilton Rd",
    "E Broad St",
    "Bethel Rd",
    "Henderson Rd",
    "Cemetery Rd",
    "Stringtown Rd",
    "Schrock Rd",
    "Olentangy River Rd",
    "Brice Rd",
    "Hard Rd",
    "Frantz Rd",
    "Main St",
    "London Ave",
    "Gender Rd",
    "Blacklick Rd",
]
OTHER_SOURCES = [
    (OtherSourceKind.CAMPAIGN, "Search ads: knee pain", "Online advertising, spring and fall flights"),
    (OtherSourceKind.CAMPAIGN, "Community health fair", "Booth at the Dublin community health fair"),
    (OtherSourceKind.INSURER, "Medical Mutual care management", "Nurse care managers steering members"),
    (OtherSourceKind.INSURER, "Anthem case management", ""),
    (OtherSourceKind.HOSPITAL, "Riverside Methodist emergency department", "ED follow-up for fractures"),
    (OtherSourceKind.HOSPITAL, "Urgent care network", "Walk-in clinics across the county"),
    (OtherSourceKind.PATIENT, "Existing patient referral", "A patient who sent a friend or relative"),
    (OtherSourceKind.SELF, "Self-referral (website or phone)", "Patient found us directly"),
]


def _phone(rng) -> str:
    return f"(614) {rng.randint(200, 989)}-{rng.randint(1000, 9999)}"


def _npi(rng, used: set[str], first_digit: str) -> str:
    while True:
        npi = make_npi(first_digit + "".join(str(rng.randrange(10)) for _ in range(8)))
        if npi not in used:
            used.add(npi)
            return npi


def _default_tiers() -> dict[str, Tier]:
    """The A/B/C tiers the migration seeds, put back if a test's flush of the database removed them."""
    seeded = importlib.import_module("refloop.directory.migrations.0003_default_tiers").DEFAULT_TIERS
    for code, label, days, rank in seeded:
        Tier.objects.get_or_create(code=code, defaults={"label": label, "target_visit_days": days, "rank": rank})
    return {t.code: t for t in Tier.objects.all()}


def build(ctx: DemoContext) -> None:
    rng, fake = ctx.rng, ctx.fake
    territories = {t.name: t for t in Territory.objects.select_related("liaison")}
    tiers = _default_tiers()
    used_npis: set[str] = set()
    used_names: set[str] = set()

    def draw_practice(rng, fake, used_npis):
        """One practice's fields, its primary location and (for about one in six) a second office."""
        city, zips, territory_name = rng.choice(PLACES)
        while True:
            name = rng.choice(PRACTICE_NAMES).format(
                surname=fake.last_name(), surname2=fake.last_name(), city=city, kind=rng.choice(KINDS)
            )
            if name not in used_names:
                used_names.add(name)
                break
        phone = _phone(rng)
        location = {
            "address_line1": f"{rng.randint(100, 9900)} {rng.choice(STREETS)}",
            "city": city,
            "state": "OH",
            "postal_code": rng.choice(zips),
            "phone": phone,
            "fax": _phone(rng),
        }
        fields = {
            "name": name,
            "npi": _npi(rng, used_npis, "1") if rng.random() < 0.8 else "",
            "phone": phone,
            "fax": location["fax"],
            "territory_name": territory_name,
        }
        second = None
        if rng.random() < 0.18:  # a second office elsewhere in the territory
            other_city, other_zips, _ = rng.choice([p for p in PLACES if p[2] == territory_name])
            second = {
                "label": f"{other_city} office",
                "address_line1": f"{rng.randint(100, 9900)} {rng.choice(STREETS)}",
                "city": other_city,
                "state": "OH",
                "postal_code": rng.choice(other_zips),
                "phone": _phone(rng),
                "fax": _phone(rng),
                "hours": "Mon-Fri 8:00-17:00",
            }
        return fields, location, second

    if ctx.scale.bulk:
        practices, providers, volume = bulk.directory(ctx, draw_practice, territories)
    else:
        practices, providers, volume = _write_with_services(ctx, draw_practice, territories, used_npis)

    # Tier by expected volume: the top tenth are A, the next quarter B, the rest C.
    ranked = sorted(providers, key=lambda p: volume[p.pk], reverse=True)
    for position, provider in enumerate(ranked):
        code = "A" if position < len(ranked) * 0.10 else "B" if position < len(ranked) * 0.35 else "C"
        provider.tier = tiers[code]
    ReferringProvider.objects.bulk_update(providers, ["tier"], batch_size=500)
    tier_of = {p.pk: p.tier.code for p in providers}
    best: dict[int, int] = {}
    for practice_id, provider_id in ProviderPractice.objects.values_list("practice_id", "provider_id"):
        code = tier_of.get(provider_id)
        if code is not None:
            best[practice_id] = min(best.get(practice_id, 2), "ABC".index(code))
    for practice in practices:
        practice.tier = tiers["ABC"[best.get(practice.pk, 2)]]
    ReferringPractice.objects.bulk_update(practices, ["tier"], batch_size=500)

    staff_count = 0
    contacts = []
    for practice in practices:
        for role in rng.sample(list(StaffRole.values[:6]), rng.randint(1, 4)):
            birthday = fake.date_between(dt.date(1965, 1, 1), dt.date(2002, 12, 31))
            contacts.append(
                StaffContact(
                    practice=practice,
                    first_name=fake.first_name(),
                    last_name=fake.last_name(),
                    role=role,
                    phone=practice.phone,
                    email=f"{fake.user_name()}@{practice.name.split()[0].lower()}.example",
                    birthday_month=birthday.month if rng.random() < 0.75 else None,
                    birthday_day=birthday.day if rng.random() < 0.75 else None,
                    work_anniversary=fake.date_between(dt.date(2008, 1, 1), dt.date(2025, 6, 30))
                    if rng.random() < 0.6
                    else None,
                    contact_preference=rng.choice(ContactPreference.values[:4]),
                    interests=rng.choice(INTERESTS) if rng.random() < 0.7 else "",
                )
            )
            staff_count += 1
    if ctx.scale.bulk:
        bulk.staff(contacts)
    else:
        for contact in contacts:
            services.staff_contact_save(contact=contact)
    # A birthday needs both parts; contacts that drew only one keep neither.
    StaffContact.objects.filter(birthday_month__isnull=True).update(birthday_day=None)
    StaffContact.objects.filter(birthday_day__isnull=True).update(birthday_month=None)

    for kind, name, detail in OTHER_SOURCES:
        services.other_source_save(source=OtherSource(kind=kind, name=name, detail=detail))

    duplicates = _plant_duplicates(ctx, providers, practices)
    ctx.objects.update(practices=practices, providers=providers, provider_volume=volume)
    ctx.count("referring practices", len(practices))
    ctx.count("referring providers", len(providers) + duplicates)
    ctx.count("staff contacts", staff_count)
    ctx.count("other sources", len(OTHER_SOURCES))


def _write_with_services(ctx: DemoContext, draw_practice, territories, used_npis) -> tuple[list, list, dict]:
    rng, fake = ctx.rng, ctx.fake
    practices: list[ReferringPractice] = []
    for _ in range(ctx.scale.referring_practices):
        fields, location, second = draw_practice(rng, fake, used_npis)
        territory = territories[fields.pop("territory_name")]
        practice = services.practice_create(territory=territory, liaison=territory.liaison, location=location, **fields)
        if second:
            services.location_save(location=practice.locations.model(practice=practice, **second))
        practices.append(practice)

    # Practice sizes are skewed: many solo and small offices, a few large groups.
    # Cumulative weights, summed once: rng.choices(practices, weights) would sum them again on every call
    # (the same draw, but quadratic at 25,000 providers in 10,000 practices).
    cumulative = list(itertools.accumulate(rng.paretovariate(1.4) for _ in practices))
    codes, creds, spec_weights = zip(*SPECIALTIES, strict=True)
    providers: list[ReferringProvider] = []
    volume: dict[int, float] = {}
    for index in range(ctx.scale.referring_providers):
        practice = practices[index] if index < len(practices) else rng.choices(practices, cum_weights=cumulative)[0]
        location = practice.locations.first()
        pick = rng.choices(range(len(codes)), spec_weights)[0]
        first = fake.first_name()
        last = fake.last_name()
        channel = rng.choices(
            [
                ReportChannel.FAX,
                ReportChannel.EMAIL,
                ReportChannel.DIRECT,
                ReportChannel.PORTAL,
                ReportChannel.MAIL,
            ],
            [55, 15, 22, 5, 3],
        )[0]
        provider = services.provider_create(
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
            report_email=f"{first[0].lower()}{last.lower()}@{practice.name.split()[0].lower()}.example"
            if channel == ReportChannel.EMAIL
            else "",
            direct_address=f"{first[0].lower()}{last.lower()}@direct.{practice.name.split()[0].lower()}.example"
            if channel == ReportChannel.DIRECT
            else "",
            territory=practice.territory,
            liaison=practice.liaison,
            source=rng.choices(["nppes", "manual"], [70, 30])[0],
        )
        services.affiliation_set(
            provider=provider,
            practice=practice,
            location=location,
            is_primary=True,
            days=rng.sample(Weekday.values[:5], rng.randint(3, 5)),
        )
        volume[provider.pk] = rng.lognormvariate(0, 1.1)  # how much this source tends to send (used by referrals)
        providers.append(provider)
    return practices, providers, volume


def _plant_duplicates(ctx: DemoContext, providers, practices) -> int:
    """What a busy front desk creates: the same doctor typed again without the NPI, the name misspelled."""
    rng = ctx.rng
    planted = 0
    for original in rng.sample(providers[:200], 4):
        last = original.last_name
        typo = last[:-2] + last[-1] + last[-2] if len(last) > 3 else last + "e"
        services.provider_create(
            first_name=original.first_name,
            last_name=typo,
            credentials=original.credentials,
            specialty=original.specialty,
            phone=original.phone,
            fax=original.fax,
            address_line1=original.address_line1,
            city=original.city,
            state="OH",
            postal_code=original.postal_code,
            source="referral",
        )
        planted += 1
    for original in rng.sample(practices[:100], 2):
        location = original.locations.first()
        services.practice_create(
            name=f"{original.name} Inc",
            phone=original.phone,
            fax=original.fax,
            source="referral",
            location={
                "address_line1": location.address_line1,
                "city": location.city,
                "state": "OH",
                "postal_code": location.postal_code,
                "phone": original.phone,
            },
        )
    return planted
