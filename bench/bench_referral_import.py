"""Bulk referral import at the scale in DESIGN.md: a 1,000,000-row CSV into a directory of 25,000 providers.

Targets (issue 4): at least 10,000 rows/s end to end (the `refloop import-referrals` process, from start to
exit, Django start-up and the dashboard rollups' upkeep included) with a peak memory (the child process's maximum
RSS) under 1 GB, on SQLite and on PostgreSQL. Each leg starts from an empty database (the SQLite file is removed,
the PostgreSQL database dropped and created again), sets up the directory and the practice in one child process,
then times the import in another, and then the same file again, which must create nothing.

CPU s is the import process's own time; on PostgreSQL the server process that runs the COPYs, index updates and
foreign-key checks spends more than the client does, and is not in that figure.

The CSV is made by `generate` (deterministic, so it matches the directory `_setup` creates) and cached in
var/bench/. Run: `.venv/bin/python -m bench bench_referral_import`; a quicker look at a smaller file:
`.venv/bin/python -m bench.bench_referral_import --rows 100000 --legs sqlite`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from bench.common import BENCH_DIR, PG_ADMIN_URL, ROOT, leg_env, load_average, run_leg, table

NAME = "referral_import"
LEGS = ("sqlite", "postgres")
ROWS = 1_000_000
PROVIDERS = 25_000
PRACTICES = 10_000
TARGET_ROWS_PER_SECOND = 10_000
TARGET_RSS_MB = 1024
SEED = 2026
GENERATOR_VERSION = 1  # bump when the generated file changes, so the cached copy is made again

LOCATIONS = ["Main campus", "Dublin clinic", "Westerville surgery center"]
REASONS = [
    "Knee pain after a fall", "Chronic low back pain, failed physical therapy", "Evaluation of shoulder instability",
    "Hip osteoarthritis, consider arthroplasty", "Carpal tunnel syndrome, numbness at night",
    "Ankle sprain not improving after six weeks", "Rotator cuff tear on MRI", "Suspected meniscal tear",
    "Lumbar radiculopathy", "Cervical spondylosis with neck pain", "Plantar fasciitis, recurrent",
    "Post-operative follow-up, total knee replacement", "Trigger finger, right ring finger",
    "Osteoporosis with vertebral fracture", "Scoliosis evaluation, adolescent", "Tennis elbow, six months",
    "Achilles tendinopathy", "Gout flare, first metatarsal", "Second opinion: spinal fusion",
    "Sports injury, anterior knee pain",
]  # fmt: skip
CODES = ["M25.561", "M54.50", "M75.100", "M16.11", "G56.00", "S93.401A", "M75.121", "S83.241A", "M54.16",
         "M47.812", "M72.2", "Z96.651", "M65.341", "M80.08XA", "M41.125", "M77.12", "M76.61", "M10.071"]  # fmt: skip
PAYERS = ["Aetna", "Anthem Blue Cross", "Cigna", "Humana", "Medicare", "Medicaid", "UnitedHealthcare", "CareSource"]
STREETS = ["Main", "High", "Sawmill", "Riverside", "Perimeter", "Bethel", "Henderson", "Hamilton", "Cleveland",
           "Broad", "Livingston", "Morse", "Polaris", "Hard", "Frantz", "Post", "Tuttle Crossing",
           "Emerald"]  # fmt: skip
STREET_KINDS = ["St", "Ave", "Rd", "Dr", "Blvd", "Pkwy"]
HEADER = ["patient_first_name", "patient_last_name", "patient_dob", "patient_sex", "patient_phone", "mrn", "payer",
          "member_id", "referring_npi", "referring_name", "referring_address", "referring_zip", "received_date",
          "reason", "diagnosis_codes", "urgency", "location", "clinician", "status", "external_id"]  # fmt: skip


def _names(seed: int) -> tuple[list[str], list[str]]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    firsts = sorted({fake.first_name() for _ in range(3000)})
    lasts = sorted({fake.last_name() for _ in range(6000)})
    return firsts, lasts


def network(seed: int = SEED) -> dict:
    """The directory and the practice, as plain values: `_setup` writes them, `generate` refers to them."""
    from refloop.lib.npi import make_npi

    rng = random.Random(seed)
    firsts, lasts = _names(seed)
    zips = [f"{rng.randint(43001, 43299):05d}" for _ in range(400)]
    offices = []
    for i in range(PRACTICES):
        street = f"{rng.randint(100, 9999)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"
        offices.append({"name": f"{rng.choice(lasts)} Family Medicine {i}", "npi": make_npi(f"2{i:08d}"),
                        "street": street, "zip": rng.choice(zips)})  # fmt: skip
    providers = []
    for i in range(PROVIDERS):
        office = rng.randrange(PRACTICES)
        first, last = rng.choice(firsts), rng.choice(lasts)
        providers.append({"npi": make_npi(f"1{i:08d}"), "first": first, "last": last, "office": office,
                          "street": offices[office]["street"], "zip": offices[office]["zip"]})  # fmt: skip
    clinicians = [
        {"first": rng.choice(firsts), "last": rng.choice(lasts), "npi": make_npi(f"1{90_000_000 + i:08d}")}
        for i in range(12)
    ]
    return {"offices": offices, "providers": providers, "clinicians": clinicians, "firsts": firsts, "lasts": lasts}


def csv_path(rows: int) -> Path:
    return BENCH_DIR / f"referral-import-{rows}-v{GENERATOR_VERSION}.csv"


def generate(path: Path, rows: int, seed: int = SEED) -> None:
    """`rows` referrals as an EHR would export them: repeat patients, history in every state, 5% without NPI."""
    net = network(seed)
    providers, clinicians, firsts, lasts = net["providers"], net["clinicians"], net["firsts"], net["lasts"]
    seen = {}
    for p in providers:
        key = (p["first"], p["last"], p["zip"])
        seen[key] = seen.get(key, 0) + 1
    rng = random.Random(seed + 1)
    today = dt.date.today()
    patients = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(rows):
            k = patients if patients < 1000 or rng.random() < 0.7 else rng.randrange(patients)
            patients += k == patients
            person = random.Random(seed * 7_919 + k)
            first, last = person.choice(firsts), person.choice(lasts)
            dob = dt.date(1930, 1, 1) + dt.timedelta(days=person.randrange(33_000))
            mrn = f"MRN{k:08d}" if person.random() < 0.85 else ""
            phone = f"({person.randint(201, 989)}) {person.randint(200, 999)}-{person.randint(0, 9999):04d}"
            payer = person.choice(PAYERS)
            member = f"{payer[:3].upper()}{person.randint(10**8, 10**9 - 1)}"
            provider = providers[int(PROVIDERS * rng.random() ** 2)]
            by_name = rng.random() < 0.05 and seen[(provider["first"], provider["last"], provider["zip"])] == 1
            age = int(1825 * rng.random() ** 0.8) + 1
            received = today - dt.timedelta(days=age)
            status = _status(rng, age)
            clinician = rng.choice(clinicians) if rng.random() < 0.7 else None
            writer.writerow([
                first, last, dob.isoformat(), person.choice("FFFMMMU"), phone, mrn, payer, member,
                "" if by_name else provider["npi"],
                f"{provider['last']}, {provider['first']}" if by_name else "",
                f"{provider['street']}, Columbus, OH" if by_name else "",
                provider["zip"] if by_name else "",
                received.isoformat(), rng.choice(REASONS), " ".join(rng.sample(CODES, rng.choice((0, 1, 1, 2)))),
                rng.choices(("routine", "urgent", "stat"), (85, 12, 3))[0], rng.choice(LOCATIONS),
                "" if clinician is None else (
                    clinician["npi"] if rng.random() < 0.5 else f"{clinician['first']} {clinician['last']}"
                ),
                status, f"EHR-{i:08d}" if rng.random() < 0.9 else "",
            ])  # fmt: skip
    tmp.replace(path)


def _status(rng: random.Random, age: int) -> str:
    if age > 60:
        return rng.choices(("closed", "lost", "declined", "report_sent"), (82, 9, 6, 3))[0]
    return rng.choice(("received", "accepted", "scheduled", "seen", "report_sent", "closed"))


def _fresh_database(leg: str) -> None:
    if leg == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "refloop_bench_{NAME}" WITH (FORCE)')
        return
    data_dir = BENCH_DIR / f"{NAME}-{leg}"
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"refloop.sqlite3{suffix}").unlink(missing_ok=True)


def _timed_import(leg: str, path: Path) -> dict:
    """Run `refloop import-referrals -v 2` as its own process (it prints how long each part of the import took);
    wall time and its peak RSS (wait4's ru_maxrss)."""
    env = leg_env(leg, NAME)
    # As an operator runs it: production settings (DEBUG off, so no query log), with the leg's generated key.
    env.pop("REFLOOP_DEBUG", None)
    env.pop("REFLOOP_SECRET_KEY", None)
    env["REFLOOP_SECRET_KEY_FILE"] = str(BENCH_DIR / f"{NAME}-{leg}" / "debug_secret_key")
    log = BENCH_DIR / f"{NAME}-{leg}" / "import.log"
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "refloop.cli", "import-referrals", str(path), "--verbosity", "2"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"import-referrals on {leg} failed:\n{output[-4000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"seconds": seconds, "cpu": cpu, "rss_mb": usage.ru_maxrss / 1024, "output": output}


def main(rows: int = ROWS, legs: tuple[str, ...] = LEGS) -> None:
    path = csv_path(rows)
    if not path.exists():
        print(f"generating {rows:,} referrals into {path} (once)...", flush=True)
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        generate(path, rows)
    size_mb = path.stat().st_size / (1024 * 1024)
    print(f"{path.name}: {rows:,} rows, {size_mb:.0f} MB", flush=True)
    results = []
    for leg in legs:
        _fresh_database(leg)
        setup = json.loads(run_leg("bench.bench_referral_import", leg, NAME, "--setup").strip().splitlines()[-1])
        print(f"{leg}: {setup['providers']:,} providers in {setup['practices']:,} practices", flush=True)
        for label in ("import", "re-import (creates nothing)"):
            run = _timed_import(leg, path)
            summary = [
                line for line in run["output"].splitlines() if line.strip().startswith(("created", "already", "time:"))
            ]
            print(
                f"{leg} {label}: {run['seconds']:.1f} s; {'; '.join(s.strip() for s in summary)}; "
                f"load {load_average()}",
                flush=True,
            )
            speed = rows / run["seconds"]
            ok = speed >= TARGET_ROWS_PER_SECOND and run["rss_mb"] < TARGET_RSS_MB
            results.append([leg, label, rows, run["seconds"], f"{speed:,.0f}", run["cpu"], f"{rows / run['cpu']:,.0f}",
                            run["rss_mb"], "ok" if ok else "MISSED"])  # fmt: skip
    header = ["database", "run", "rows", "wall s", "rows/s", "CPU s", "rows/CPU s", "peak RSS MB",
              f">= {TARGET_ROWS_PER_SECOND:,}/s, < 1 GB"]  # fmt: skip
    print(table(results, header))
    print("rows/s is end to end (wall clock); CPU s is the import process's user + system time: when other work")
    print("shares the machine, wall time grows while CPU time does not.")


def _setup() -> None:
    """Migrate an empty database and write the directory and the practice that the generated file refers to."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from refloop.directory.models import PracticeLocation, ProviderPractice, ReferringPractice, ReferringProvider
    from refloop.practice.models import Clinician, Location

    call_command("migrate", verbosity=0)
    get_user_model().objects.create_user(username="coordinator", password=None, role="coordinator")
    net = network()
    for name in LOCATIONS:
        Location.objects.create(name=name, city="Columbus", state="OH")
    Clinician.objects.bulk_create(
        [Clinician(first_name=c["first"], last_name=c["last"], npi=c["npi"], credentials="MD")
         for c in net["clinicians"]]
    )  # fmt: skip
    offices = ReferringPractice.objects.bulk_create(
        [ReferringPractice(name=o["name"], npi=o["npi"], search_text=o["name"].lower()) for o in net["offices"]],
        batch_size=2000,
    )
    locations = PracticeLocation.objects.bulk_create(
        [
            PracticeLocation(practice=office, is_primary=True, address_line1=o["street"], city="Columbus",
                             state="OH", postal_code=o["zip"])
            for office, o in zip(offices, net["offices"], strict=True)
        ],
        batch_size=2000,
    )  # fmt: skip
    people = ReferringProvider.objects.bulk_create(
        [
            ReferringProvider(npi=p["npi"], first_name=p["first"], last_name=p["last"], credentials="MD",
                              address_line1=p["street"], city="Columbus", state="OH", postal_code=p["zip"],
                              search_text=f"{p['first']} {p['last']} {p['npi']}".lower())
            for p in net["providers"]
        ],
        batch_size=2000,
    )  # fmt: skip
    ProviderPractice.objects.bulk_create(
        [
            ProviderPractice(provider=person, practice=offices[p["office"]], location=locations[p["office"]],
                             is_primary=True)
            for person, p in zip(people, net["providers"], strict=True)
        ],
        batch_size=2000,
    )  # fmt: skip
    print(json.dumps({"providers": len(people), "practices": len(offices)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--leg", choices=LEGS)
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--legs", nargs="+", choices=LEGS, default=list(LEGS))
    args = parser.parse_args()
    if args.leg and args.setup:
        _setup()
    else:
        main(args.rows, tuple(args.legs))
