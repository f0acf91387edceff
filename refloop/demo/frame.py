"""The frame of the demo practice: the practice, 3 locations, 8 clinicians, one login per role, 3 liaisons."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils import timezone

from refloop.accounts.roles import Role
from refloop.demo import DEMO_PASSWORD, DemoContext
from refloop.directory.models import Territory
from refloop.lib.holidays import practice_holidays
from refloop.lib.npi import make_npi
from refloop.practice.models import Clinician, Holiday, Location, Practice

LOCATIONS = [
    ("Main campus", "4100 Riverside Dr", "Columbus", "43220", "Mon-Fri 7:30-17:30"),
    ("Dublin", "6800 Perimeter Loop Rd", "Dublin", "43017", "Mon-Fri 8:00-17:00"),
    ("Westerville", "300 Polaris Pkwy", "Westerville", "43082", "Mon-Thu 8:00-17:00, Fri 8:00-12:00"),
]

CLINICIANS = [
    ("MD", "Orthopaedic Surgery, Sports Medicine"),
    ("MD", "Orthopaedic Surgery, Joint Replacement"),
    ("MD", "Orthopaedic Surgery, Spine"),
    ("MD", "Orthopaedic Surgery, Hand and Upper Extremity"),
    ("DO", "Orthopaedic Surgery, Foot and Ankle"),
    ("MD", "Physical Medicine and Rehabilitation"),
    ("DO", "Sports Medicine (non-operative)"),
    ("PA-C", "Physician Assistant, Orthopaedics"),
]

# username -> (role, first, last); the first login of each role is the one printed for the demo.
LOGINS = [
    ("admin", Role.ADMIN, "Alex", "Admin"),
    ("manager", Role.MANAGER, "Maria", "Delgado"),
    ("coordinator", Role.COORDINATOR, "Casey", "Nguyen"),
    ("coordinator2", Role.COORDINATOR, "Jordan", "Pike"),
    ("liaison", Role.LIAISON, "Lena", "Brooks"),
    ("liaison2", Role.LIAISON, "Marcus", "Hale"),
    ("liaison3", Role.LIAISON, "Priya", "Raman"),
    ("clinician", Role.CLINICIAN, "", ""),  # named after the first clinician
]

TERRITORIES = [
    ("North", "Westerville, Delaware and the Polaris corridor", "liaison"),
    ("West", "Dublin, Hilliard and Marysville", "liaison2"),
    ("Central & South", "Downtown Columbus, Grove City and Canal Winchester", "liaison3"),
]


def build(ctx: DemoContext) -> None:
    rng, fake = ctx.rng, ctx.fake
    Practice.objects.create(
        name="Lakeside Orthopaedics & Sports Medicine",
        specialty="Orthopaedics",
        npi=make_npi("1" + "".join(str(rng.randrange(10)) for _ in range(8))),
        phone="(614) 555-0100",
        fax="(614) 555-0101",
        email="referrals@lakeside-ortho.example",
        website="https://lakeside-ortho.example",
        address_line1=LOCATIONS[0][1],
        city=LOCATIONS[0][2],
        state="OH",
        postal_code=LOCATIONS[0][3],
    )
    locations = []
    for index, (name, street, city, zip_code, hours) in enumerate(LOCATIONS):
        locations.append(
            Location.objects.create(
                name=name,
                address_line1=street,
                city=city,
                state="OH",
                postal_code=zip_code,
                phone=f"(614) 555-01{index + 1}0",
                fax=f"(614) 555-01{index + 1}1",
                hours=hours,
            )
        )
    ctx.objects["locations"] = locations

    clinicians = []
    used_npis: set[str] = set()
    for index, (credentials, specialty) in enumerate(CLINICIANS):
        npi = make_npi("1" + "".join(str(rng.randrange(10)) for _ in range(8)))
        while npi in used_npis:
            npi = make_npi("1" + "".join(str(rng.randrange(10)) for _ in range(8)))
        used_npis.add(npi)
        first, last = fake.first_name(), fake.last_name()
        clinician = Clinician.objects.create(
            first_name=first,
            last_name=last,
            credentials=credentials,
            npi=npi,
            specialty=specialty,
            email=f"{first[0].lower()}{last.lower()}@lakeside-ortho.example",
        )
        clinician.locations.set([locations[index % 3]] + ([locations[(index + 1) % 3]] if index < 4 else []))
        clinicians.append(clinician)
    ctx.objects["clinicians"] = clinicians

    User = get_user_model()
    users = {}
    for username, role, first, last in LOGINS:
        if role == Role.CLINICIAN:
            first, last = clinicians[0].first_name, clinicians[0].last_name
        user = User(
            username=username,
            role=role,
            first_name=first,
            last_name=last,
            email=f"{username}@lakeside-ortho.example",
            is_superuser=(role == Role.ADMIN),
            is_staff=(role == Role.ADMIN),
        )
        user.set_password(DEMO_PASSWORD)
        user.save()
        users[username] = user
    clinicians[0].user = users["clinician"]
    clinicians[0].save(update_fields=["user"])
    ctx.objects["users"] = users

    for name, description, liaison in TERRITORIES:
        Territory.objects.create(name=name, description=description, liaison=users[liaison])

    this_year = timezone.localdate().year
    for year in range(this_year - ctx.scale.years, this_year + 2):
        for day, name in practice_holidays(year):
            Holiday.objects.get_or_create(date=day, defaults={"name": name})
    ctx.count("locations", len(locations))
    ctx.count("clinicians", len(clinicians))
    ctx.count("users", len(users))
    ctx.count("territories", len(TERRITORIES))
