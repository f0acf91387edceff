"""The dashboard's source lists (top providers, top practices, new and growing sources) at 1,000,000 referrals.

The rollup tables are filled directly, without referrals (issue 7's scale, realistic skew): 1,000,000 member
rows over 60 months for 25,000 referring providers (a Zipf-like share each, a few send hundreds) in 10,000
practices, 15% of referrals from other sources; 6 locations, 30 clinicians, 12 payers, urgency 75/20/5 routine/
urgent/stat, 12 territories with their liaisons, 20 specialties. The per-source sums are then built from the
member rows by the rollups' own SQL. A sample is one `selectors.source_lists(filters)` call: the four lists the
htmx partial /insights/sources/ renders (the template and the names lookup aside). Periods end at the last
complete month and last 1, 3, 3, 6, 12 or 24 months (in the last scenario 24 or 60, the longest period the
dashboard's form accepts). On PostgreSQL the rollup tables are vacuumed and analysed first, as autovacuum keeps them;
SQLite gets no ANALYZE (no installation runs it).

Run: `.venv/bin/python -m bench bench_source_lists` (both legs), or one leg:
`.venv/bin/python -m bench.bench_source_lists --legs sqlite` (`--refill` to fill the tables again).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time

from bench.common import ROOT, leg_env, load_average, summary, table, timed

LEGS = ("sqlite", "postgres")
NAME = "h_src_source_lists"
REFERRALS = 1_000_000
PROVIDERS = 25_000
PRACTICES = 10_000
MONTHS = 60
SAMPLES = 20  # per scenario


def main(legs: tuple[str, ...] = LEGS, refill: bool = False) -> None:
    rows = []
    for leg in legs:
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_source_lists", "--leg", leg] + (["--refill"] if refill else []),
            env=leg_env(leg, NAME), cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"bench_source_lists --leg {leg} failed:\n{result.stdout}\n{result.stderr}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{leg}: {figures['members']:,} member rows, {figures['source_rows']:,} source rows; "
            f"fill {figures['fill_s']} s; load {figures['load']}",
            flush=True,
        )
        for scenario, f in figures["scenarios"].items():
            rows.append([leg, scenario, f["n"], f["p50"], f["p95"], f["max"]])
    print(table(rows, ["database", "source lists", "n", "p50 ms", "p95 ms", "max ms"]))


def _fill(end) -> None:
    """1,000,000 member rows straight into the table, then every per-source sum from them."""
    from django.db import connection, transaction

    from refloop.insights import rollups
    from refloop.insights.filters import add_months
    from refloop.insights.models import ReferralRollup, RollupMember, SourceRollup

    rng = random.Random(11)
    months = [add_months(end, -i) for i in range(MONTHS)]
    month_weights = [1.0 + 0.4 * (MONTHS - i) / MONTHS for i in range(MONTHS)]  # slow growth
    provider_weights = [1 / (rank + 10) ** 0.9 for rank in range(PROVIDERS)]
    practice_of = [rng.randint(1, PRACTICES) for _ in range(PROVIDERS)]
    specialty_of = [f"Specialty {rng.randint(1, 20)}" for _ in range(PROVIDERS)]
    territory_of = [rng.randint(1, 12) for _ in range(PROVIDERS)]
    payers = [f"Payer {i}" for i in range(1, 12)] + [""]
    payer_weights = [30, 20, 12, 10, 8, 6, 4, 3, 3, 2, 1, 1]
    fields = [RollupMember._meta.pk, *(f for f in RollupMember._meta.concrete_fields if not f.primary_key)]
    q = connection.ops.quote_name
    insert = (
        f"INSERT INTO {q(RollupMember._meta.db_table)} ({', '.join(q(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    chunk = 20_000
    with transaction.atomic():
        for model in (ReferralRollup, SourceRollup, RollupMember):
            model.objects.all().delete()
        with connection.cursor() as cursor:
            for start in range(0, REFERRALS, chunk):
                n = min(chunk, REFERRALS - start)
                who = rng.choices(range(PROVIDERS), weights=provider_weights, k=n)
                when = rng.choices(months, weights=month_weights, k=n)
                payer = rng.choices(payers, weights=payer_weights, k=n)
                batch = []
                for i in range(n):
                    p = who[i]
                    other = rng.random() < 0.15
                    seen = rng.random() < 0.6
                    values = {
                        "referral_id": start + i + 1,
                        "month": when[i],
                        "source_kind": "hospital" if other else "provider",
                        "provider_id": 0 if other else p + 1,
                        "practice_id": 0 if other else practice_of[p],
                        "other_source_id": rng.randint(1, 200) if other else 0,
                        "payer": payer[i],
                        "location_id": rng.randint(1, 6),
                        "clinician_id": rng.randint(1, 30),
                        "specialty": "" if other else specialty_of[p],
                        "territory_id": 0 if other else territory_of[p],
                        "liaison_id": 0 if other else 100 + territory_of[p] % 5,
                        "urgency": rng.choices(("routine", "urgent", "stat"), weights=(75, 20, 5))[0],
                        "scheduled": seen or rng.random() < 0.3,
                        "seen": seen,
                        "report_sent": seen and rng.random() < 0.8,
                        "closed_loop": seen and rng.random() < 0.7,
                        "declined": False,
                        "open": not seen,
                        "lost_reason": "",
                        "contact_hours": None,
                        "contact_bucket": None,
                        "appointment_days": None,
                        "appointment_bucket": None,
                        "turnaround_days": None,
                    }
                    batch.append(tuple(f.get_db_prep_save(values[f.attname], connection) for f in fields))
                cursor.executemany(insert, batch)
        # The rollups' own SQL, from the member rows: the per-source sums (and the unfiltered cuboid with them).
        rollups._apply("1 = 1", [], sign=1, cuboids=(0,), with_sources=True)


def _leg(refill: bool) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    from refloop.insights import selectors
    from refloop.insights.filters import Filters, add_months, default_period
    from refloop.insights.models import RollupMember, SourceRollup

    _, end = default_period()
    fill_s = 0.0
    if refill or RollupMember.objects.count() != REFERRALS or not SourceRollup.objects.exists():
        started = time.perf_counter()
        _fill(end)
        fill_s = round(time.perf_counter() - started, 1)
    if connection.vendor == "postgresql":  # as autovacuum leaves them after a migration rewrote the sums
        with connection.cursor() as cursor:
            for model in (RollupMember, SourceRollup):
                cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")

    rng = random.Random(7)
    options = {
        "location": list(range(1, 7)),
        "clinician": list(range(1, 31)),
        "payer": [f"Payer {i}" for i in range(1, 12)],
        "urgency": ["routine", "urgent", "stat"],
        "territory": list(range(1, 13)),
        "liaison": list(range(100, 105)),
        "specialty": [f"Specialty {i}" for i in range(1, 21)],
    }
    member_level = ["location", "clinician", "payer", "urgency"]

    def run(names_fn, periods=(1, 3, 3, 6, 12, 24)) -> None:
        months = rng.choice(periods)
        values = {name: rng.choice(options[name]) for name in names_fn()}
        selectors.source_lists(Filters(start=add_months(end, -(months - 1)), end=end, values=values))

    timed(lambda: run(list), 3)  # warm caches and the connection
    scenarios = {
        "no filter": summary(timed(lambda: run(list), SAMPLES)),
        "territory, liaison or specialty": summary(
            timed(lambda: run(lambda: [rng.choice(["territory", "liaison", "specialty"])]), SAMPLES)
        ),
        "location, clinician, payer or urgency": summary(
            timed(lambda: run(lambda: [rng.choice(member_level)]), SAMPLES)
        ),
        "urgency alone": summary(timed(lambda: run(lambda: ["urgency"]), SAMPLES)),
        "two filters (any)": summary(timed(lambda: run(lambda: rng.sample(sorted(options), 2)), SAMPLES)),
        "24 or 60 months, no filter or one (any)": summary(
            timed(lambda: run(lambda: rng.sample(sorted(options), rng.randint(0, 1)), periods=(24, 60)), SAMPLES)
        ),
    }
    print(
        json.dumps(
            {
                "members": RollupMember.objects.count(),
                "source_rows": SourceRollup.objects.count(),
                "fill_s": fill_s,
                "load": load_average(),
                "scenarios": scenarios,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--leg", choices=LEGS)
    parser.add_argument("--legs", nargs="+", choices=LEGS, default=list(LEGS))
    parser.add_argument("--refill", action="store_true", help="fill the rollup tables again")
    args = parser.parse_args()
    if args.leg:
        _leg(args.refill)
    else:
        main(tuple(args.legs), args.refill)
