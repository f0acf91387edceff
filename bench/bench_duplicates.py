"""Duplicate detection at the scale in DESIGN.md: 25,000 providers in 10,000 practices, 2% planted duplicates.

`python -m bench bench_duplicates` generates the directory into a throwaway SQLite database (REFLOOP_DEBUG=1,
a temporary REFLOOP_DATA_DIR, DATABASE_URL ignored), then times `find_duplicate_providers` and
`find_duplicate_practices` and counts how many of the planted pairs each found. `generate` is also used by
the tests, at a smaller size, to check that planted duplicates are found.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PROVIDERS = 25_000
PRACTICES = 10_000
DUPLICATE_RATE = 0.02
REPEAT = 3

NICKNAMES = {"William": "Bill", "Robert": "Rob", "Elizabeth": "Liz", "Michael": "Mike", "Jennifer": "Jen"}
PRACTICE_WORDS = ["Family Medicine", "Internal Medicine", "Pediatrics", "Cardiology", "Orthopaedics",
                  "Primary Care", "Women's Health", "Dermatology", "Gastroenterology", "Urology"]  # fmt: skip
CREDENTIALS = ["MD", "DO", "NP", "PA-C"]
PRACTICE_SUFFIXES = ["Associates", "Group", "Partners", "Clinic", "Physicians", "Specialists", "LLC", "PC"]


@dataclass
class Planted:
    """The ids of each planted duplicate pair, as frozensets, so a found pair matches in either order."""

    providers: set[frozenset[int]] = field(default_factory=set)
    practices: set[frozenset[int]] = field(default_factory=set)


def _typo(rng: random.Random, text: str) -> str:
    """One keying slip: two letters swapped, one dropped, or one doubled (never the first letter)."""
    if len(text) < 4:
        return text + text[-1]
    i = rng.randrange(1, len(text) - 1)
    slip = rng.choice(["swap", "drop", "double"])
    if slip == "swap":
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if slip == "drop":
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def _phone(rng: random.Random) -> str:
    return f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"


def _reformat(phone: str) -> str:
    digits = "".join(c for c in phone if c.isdigit())
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:]}"


def generate(
    *, providers: int = PROVIDERS, practices: int = PRACTICES, rate: float = DUPLICATE_RATE, seed: int = 7
) -> Planted:
    """Fill the directory with group practices and their providers, plus duplicates typed the ways people do.

    Practices cluster in a few hundred ZIP codes and their providers share the office phone, fax and address,
    as in life: most candidate pairs are colleagues, who must not be listed.
    """
    from faker import Faker

    from refloop.directory.models import (
        PracticeLocation,
        ProviderPractice,
        ReferringPractice,
        ReferringProvider,
    )
    from refloop.lib.npi import make_npi

    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    zips = [f"{rng.randint(43000, 45999):05d}" for _ in range(max(20, practices // 25))]
    planted = Planted()

    offices = []
    for i in range(practices):
        name = f"{fake.last_name()} {rng.choice(PRACTICE_WORDS)} {rng.choice(PRACTICE_SUFFIXES)}"
        offices.append(
            ReferringPractice(
                name=name, npi=make_npi(f"2{i:08d}") if rng.random() < 0.7 else "", phone=_phone(rng),
                fax=_phone(rng),
            )
        )  # fmt: skip
    ReferringPractice.objects.bulk_create(offices, batch_size=2000)
    locations = [
        PracticeLocation(
            practice=office, is_primary=True, address_line1=fake.street_address(), city=fake.city(),
            state="OH", postal_code=rng.choice(zips), phone=office.phone, fax=office.fax,
        )
        for office in offices
    ]  # fmt: skip
    PracticeLocation.objects.bulk_create(locations, batch_size=2000)

    people = []
    homes = []
    for i in range(providers):
        # A few large groups and many small ones.
        home = rng.randrange(practices // 20) if rng.random() < 0.3 else rng.randrange(practices)
        loc = locations[home]
        first = fake.first_name()
        people.append(
            ReferringProvider(
                first_name=first, last_name=fake.last_name(), credentials=rng.choice(CREDENTIALS),
                npi=make_npi(f"1{i:08d}") if rng.random() < 0.85 else "", address_line1=loc.address_line1,
                city=loc.city, state="OH", postal_code=loc.postal_code, phone=loc.phone, fax=loc.fax,
            )
        )  # fmt: skip
        homes.append(home)

    copies = []
    originals = rng.sample(range(providers), int(providers * rate))
    for n, index in enumerate(originals):
        original = people[index]
        variant = n % 4
        copy = ReferringProvider(
            first_name=original.first_name, last_name=original.last_name, credentials=original.credentials,
            npi="", state="OH",
        )  # fmt: skip
        if variant == 0:  # a misspelt last name, typed from a fax, with the office fax
            copy.last_name = _typo(rng, original.last_name)
            copy.fax = _reformat(original.fax)
        elif variant == 1:  # a nickname or initial, same address written another way
            copy.first_name = NICKNAMES.get(original.first_name, original.first_name[0])
            copy.address_line1 = original.address_line1.replace("Street", "St").replace("Avenue", "Ave.")
            copy.postal_code = original.postal_code
            copy.phone = _reformat(original.phone)
        elif variant == 2:  # a stub: only the name
            pass
        else:  # a typo in the first name, with the phone
            copy.first_name = _typo(rng, original.first_name)
            copy.phone = original.phone
        copies.append((index, copy))
    ReferringProvider.objects.bulk_create(people + [c for _, c in copies], batch_size=2000)
    planted.providers = {frozenset((people[i].pk, copy.pk)) for i, copy in copies}
    ProviderPractice.objects.bulk_create(
        [
            ProviderPractice(provider=p, practice=offices[h], location=locations[h])
            for p, h in zip(people, homes, strict=True)
        ],
        batch_size=2000,
    )

    practice_copies = []
    for index in rng.sample(range(practices), int(practices * rate)):
        office = offices[index]
        name = office.name.replace("Associates", "Assoc.").replace("Orthopaedics", "Orthopedics")
        name = name if name != office.name else f"The {_typo(rng, office.name)}"
        practice_copies.append((index, ReferringPractice(name=name, phone=_reformat(office.phone))))
    ReferringPractice.objects.bulk_create([c for _, c in practice_copies], batch_size=2000)
    planted.practices = {frozenset((offices[i].pk, copy.pk)) for i, copy in practice_copies}
    return planted


def _measure(find, planted: set[frozenset[int]]) -> tuple[float, int, int]:
    started = time.perf_counter()
    pairs = find(limit=1_000_000)  # every pair, so that none is cut off before it is counted
    seconds = time.perf_counter() - started
    found = {frozenset((p.keep_id, p.remove_id)) for p in pairs}
    return seconds, len(found & planted), len(found - planted)


def _leg() -> None:
    """In the child process: set up Django on the throwaway database, generate, time, print the table."""
    import django

    django.setup()
    from django.core.management import call_command

    from bench.common import table
    from refloop.directory.duplicates import (
        PROVIDER_FIELDS,
        candidate_pairs,
        find_duplicate_practices,
        find_duplicate_providers,
        provider_record,
    )
    from refloop.directory.models import ReferringPractice, ReferringProvider

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    planted = generate()
    print(f"generated in {time.perf_counter() - started:.1f} s", flush=True)
    rows = []
    for kind, model, find, pairs in [
        ("providers", ReferringProvider, find_duplicate_providers, planted.providers),
        ("practices", ReferringPractice, find_duplicate_practices, planted.practices),
    ]:
        for _ in range(REPEAT):
            seconds, hits, others = _measure(find, pairs)
            rows.append([kind, model.objects.count(), len(pairs), seconds * 1000, hits, others])
    print(table(rows, ["directory", "records", "planted pairs", "ms", "planted found", "other pairs listed"]))
    records = [provider_record(row) for row in ReferringProvider.objects.values(*PROVIDER_FIELDS)]
    every = len(records) * (len(records) - 1) // 2
    print(f"provider pairs scored after blocking: {len(candidate_pairs(records)):,} of {every:,} possible")


def main() -> None:
    """Run the benchmark in a child process, so that its Django settings (a throwaway SQLite database under
    a temporary REFLOOP_DATA_DIR) never mix with another benchmark's or with var/refloop.sqlite3."""
    data_dir = tempfile.mkdtemp(prefix="refloop-bench-duplicates-")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(REFLOOP_DEBUG="1", REFLOOP_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="refloop.settings")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_duplicates", "--leg"],
            env=env, cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    if result.returncode != 0:
        raise SystemExit(f"bench_duplicates failed:\n{result.stdout}\n{result.stderr}")
    print(result.stdout, end="")


if __name__ == "__main__":
    if "--leg" in sys.argv:
        _leg()
    else:
        main()
