"""The design-scale dataset every page benchmark reads, built once per database and kept in var/bench/.

    from bench.dataset import ensure_dataset
    env = ensure_dataset("sqlite")   # or "postgres"; builds on first use (minutes), then returns at once

`ensure_dataset(leg)` returns the environment for a child process (`subprocess.run(..., env=env)`, then
`django.setup()` there) whose database holds the demo practice at the "large" scale of DESIGN.md: 25,000
referring providers in 10,000 practices, 1,000,000 referrals over five years with their events, owners and due
times (most closed, every queue with open and overdue work), some 300,000 liaison activities, and letters for
the showcase provider. `env["REFLOOP_BENCH_SHOWCASE_PROVIDER"]` is the primary key of that provider: the
busiest source, whose five-year timeline is full (well over a thousand referrals, hundreds of activities and
letters), for the provider page measurement. Logins are the demo's (coordinator, manager, liaison, ...).

Treat the database as read-only: a benchmark that writes would change what the next one measures. Build it
by hand with `.venv/bin/python -m bench.dataset [--legs sqlite postgres] [--rebuild]`.

How it is built: `refloop.demo.load(scale="large", seed=SEED)`, whose large scale writes the directory, the
referrals and the outreach history in bulk (refloop/demo/bulk.py, refloop/demo/referrals.py), then the
showcase provider's extra activities and letters. Deterministic from SEED, except that dates are relative to
the day it was built. Completion is a row in the table `bench_dataset` written last, with VERSION: a
half-built database (the process killed, an older VERSION) has no such row and is built again from empty.
A lock file per leg keeps two benchmarks that start together from building it twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal

from bench.common import BENCH_DIR, PG_ADMIN_URL, ROOT, leg_env

NAME = "dataset"
LEGS = ("sqlite", "postgres")
VERSION = 1  # bump when what is built changes: every cached dataset is then built again
SEED = 2026
MARKER = "bench_dataset"
STEPS = "bench_dataset_steps"  # one row per demo step, committed with the step
RESUMABLE_AFTER = {f"refloop.demo.{n}.build" for n in ("frame", "directory", "referrals", "letters", "outreach")}
SHOWCASE_ACTIVITIES = 300
SHOWCASE_LETTER_REFERRALS = 250


def ensure_dataset(leg: str) -> dict[str, str]:
    """The environment of a child process on `leg`'s design-scale dataset, built first if missing or half-built."""
    env = leg_env(leg, NAME)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    with (BENCH_DIR / f"{NAME}-{leg}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        info = _marker(leg, env)
        if info is None:
            if not _resumable(leg, env):
                _wipe(leg)
            env = leg_env(leg, NAME)
            print(f"building the design-scale dataset on {leg} (once; minutes)...", file=sys.stderr, flush=True)
            result = subprocess.run(
                [sys.executable, "-m", "bench.dataset", "--leg", leg, "--build"], env=env, cwd=ROOT
            )  # fmt: skip
            if result.returncode != 0:
                raise SystemExit(f"building the dataset on {leg} failed")
            info = _marker(leg, env)
            if info is None:
                raise SystemExit(f"the dataset on {leg} was built but has no completion marker")
        else:  # built before: apply the migrations written since (new indexes...), as an upgrade would
            result = subprocess.run(
                [sys.executable, "-m", "bench.dataset", "--leg", leg, "--migrate"], env=env, cwd=ROOT
            )
            if result.returncode != 0:
                raise SystemExit(f"migrating the dataset on {leg} failed")
    env["REFLOOP_BENCH_SHOWCASE_PROVIDER"] = str(info["showcase_provider"])
    env["REFLOOP_BENCH_DATASET"] = json.dumps(info)
    return env


def _step_name(step) -> str:
    return f"{step.__module__}.{step.__name__}"


def _resumable(leg: str, env: dict[str, str]) -> bool:
    """A build stopped after the steps that hand objects to the next ones (frame to outreach) had committed:
    the later steps (rollups, early warning, the showcase) read only the database, so the build goes on from
    there instead of starting again from empty (an hour on a busy machine)."""
    rows = _query(leg, env, f"SELECT step FROM {STEPS} WHERE version = {VERSION}")  # noqa: S608 - constants
    done = {step for (step,) in rows or []}
    return done >= RESUMABLE_AFTER


def _marker(leg: str, env: dict[str, str]) -> dict | None:
    """The completion row, if this leg's database has one for this VERSION."""
    rows = _query(leg, env, f"SELECT info FROM {MARKER} WHERE version = {VERSION}")  # noqa: S608 - constants
    return json.loads(rows[0][0]) if rows else None


def _query(leg: str, env: dict[str, str], query: str) -> list[tuple] | None:
    """Rows of `query` on this leg's dataset; None when there is no database or no such table."""
    try:
        if leg == "postgres":
            import psycopg

            with psycopg.connect(env["DATABASE_URL"]) as conn:
                return conn.execute(query).fetchall()
        path = BENCH_DIR / f"{NAME}-{leg}" / "refloop.sqlite3"
        if not path.exists():
            return None
        with sqlite3.connect(path) as conn:
            return conn.execute(query).fetchall()
    except Exception:  # no database, no table: not built
        return None


def _wipe(leg: str) -> None:
    if leg == "postgres":
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "refloop_bench_{NAME}" WITH (FORCE)')
        return
    for suffix in ("", "-wal", "-shm"):
        (BENCH_DIR / f"{NAME}-{leg}" / f"refloop.sqlite3{suffix}").unlink(missing_ok=True)


def _build() -> None:
    """In the child process: migrate the empty database, load the large demo, add the showcase, mark it done."""
    import random

    import django
    from faker import Faker

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from refloop import demo

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    fake = Faker("en_US")
    fake.seed_instance(SEED)
    context = demo.DemoContext(seed=SEED, scale=demo.SCALES["large"], rng=random.Random(SEED), fake=fake)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {STEPS} (version integer, step text, seconds real)")
        cursor.execute(f"SELECT step, seconds FROM {STEPS} WHERE version = %s", [VERSION])  # noqa: S608
        steps = dict(cursor.fetchall())
    if steps:  # resuming (see _resumable): what the later steps take from the earlier ones, read back
        from refloop.accounts.models import User

        context.objects["users"] = {user.username: user for user in User.objects.order_by("pk")}
        print(f"  resuming after {', '.join(steps)}", file=sys.stderr, flush=True)
    for step in demo._steps():  # demo.load, one step at a time so each is timed
        name = _step_name(step)
        if name in steps:
            continue
        at = time.perf_counter()
        with transaction.atomic():
            step(context)
            steps[name] = round(time.perf_counter() - at, 1)
            with connection.cursor() as cursor:  # committed with the step's own rows
                cursor.execute(f"INSERT INTO {STEPS} VALUES (%s, %s, %s)", [VERSION, name, steps[name]])  # noqa: S608
        print(f"  {name}: {steps[name]} s", file=sys.stderr, flush=True)
    at = time.perf_counter()
    with transaction.atomic():
        showcase = _showcase(context)
    steps["showcase"] = round(time.perf_counter() - at, 1)
    _tidy(connection)
    info = {
        "version": VERSION,
        "seed": SEED,
        "built_on": dt.date.today().isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        "steps": steps,
        "created": context.created,
        **showcase,
    }
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (version integer, info text)")
        cursor.execute(f"INSERT INTO {MARKER} (version, info) VALUES (%s, %s)", [VERSION, json.dumps(info)])  # noqa: S608
    print(json.dumps(info))


def _migrate() -> None:
    """In the child process: apply the migrations the dataset does not have yet, then refresh the statistics."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    print("migrating the cached dataset to the current schema...", file=sys.stderr, flush=True)
    call_command("migrate", verbosity=0)
    _tidy(connection)


def _tidy(connection) -> None:
    """PostgreSQL: vacuumed and analysed, as autovacuum keeps a database that has run a while (a table never vacuumed
    has an empty visibility map, so the rollups' covering indexes cannot answer by index-only scans: the source
    lists took 340 ms instead of 220 at a million referrals). SQLite: the
    WAL folded back in, and no statistics, as in every installation (nothing runs ANALYZE there; and without
    STAT4 histograms its averages say each state holds a tenth of the referrals, so it scans the whole table
    for the open ones: 170 ms instead of 20-40 ms for the queue counts at a million referrals)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            if cursor.fetchone():
                cursor.execute("DELETE FROM sqlite_stat1")
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            cursor.execute("VACUUM (ANALYZE)")  # outside a transaction: _tidy runs after the build's atomic blocks


def _showcase(context) -> dict:
    """The busiest source gets a full five years on its page: extra liaison activities with it, and letters."""
    import random

    from django.db.models import Count
    from django.utils import timezone

    from refloop.demo import bulk
    from refloop.demo import letters as demo_letters
    from refloop.letters import services as letter_services
    from refloop.letters.models import Letter
    from refloop.outreach.models import ActivityKind, ActivityStatus, Origin
    from refloop.referrals.models import Referral, ReferralEvent

    rng = random.Random(SEED + 3)
    top = (
        Referral.objects.filter(referring_provider__isnull=False)
        .values("referring_provider")
        .annotate(n=Count("pk"))
        .order_by("-n", "referring_provider")
        .first()
    )
    from refloop.directory.models import ReferringProvider

    provider = ReferringProvider.objects.get(pk=top["referring_provider"])
    practice = provider.primary_practice()
    liaison = provider.liaison or context.objects["users"]["liaison"]
    today = timezone.localdate()
    writer = bulk.ActivityWriter(today)
    kinds = [ActivityKind.VISIT, ActivityKind.CALL, ActivityKind.EMAIL, ActivityKind.DROP_OFF, ActivityKind.VISIT]
    for _ in range(SHOWCASE_ACTIVITIES):
        day = today - dt.timedelta(days=rng.randint(1, 5 * 365))
        while day.weekday() >= 5:
            day -= dt.timedelta(days=1)
        kind = rng.choice(kinds)
        writer.add(
            fields={
                "kind": kind,
                "status": ActivityStatus.DONE,
                "date": day,
                "duration_minutes": rng.choice([15, 20, 30]) if kind != ActivityKind.EMAIL else None,
                "practice": practice,
                "liaison": liaison,
                "created_by": liaison,
                "origin": Origin.MANUAL,
                "purpose": "Review of the month's referrals and report turnaround",
                "cost": Decimal("0.00"),
            },
            who=[provider],
            crew=[],
            follow_up=None,
        )
    writer.flush()
    # The letters each step of its latest referrals would have queued, answered as the demo's worker does.
    referrals = Referral.objects.filter(referring_provider=provider).order_by("-received_at")[
        :SHOWCASE_LETTER_REFERRALS
    ]
    events = ReferralEvent.objects.filter(referral__in=list(referrals)).select_related(
        "referral__patient", "referral__referring_provider", "referral__referring_practice"
    )
    for event in events.order_by("at", "pk"):
        letter_services.event_letters_queue(event=event)
    users = context.objects["users"]
    demo_letters._play_past_deliveries(rng, timezone.now(), by=users.get("coordinator"))
    demo_letters._forget_past_tasks()
    return {
        "showcase_provider": provider.pk,
        "showcase_referrals": top["n"],
        "showcase_activities": provider.outreach_activities.count(),
        "showcase_letters": Letter.objects.filter(provider=provider).count(),
    }


def main(legs: tuple[str, ...] = LEGS, rebuild: bool = False) -> None:
    for leg in legs:
        if rebuild:
            _wipe(leg)
        started = time.perf_counter()
        env = ensure_dataset(leg)
        info = json.loads(env["REFLOOP_BENCH_DATASET"])
        print(
            f"{leg}: dataset v{info['version']} built {info['built_on']} in {info['seconds']} s "
            f"(steps {info['steps']}); ready in {time.perf_counter() - started:.1f} s; "
            f"showcase provider {info['showcase_provider']}: {info['showcase_referrals']} referrals, "
            f"{info['showcase_activities']} activities, {info['showcase_letters']} letters",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--leg", choices=LEGS)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--migrate", action="store_true")
    parser.add_argument("--legs", nargs="+", choices=LEGS, default=list(LEGS))
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    if args.leg and args.build:
        _build()
    elif args.leg and args.migrate:
        _migrate()
    else:
        main(tuple(args.legs), args.rebuild)
