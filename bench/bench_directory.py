"""Directory at design scale (25,000 referring providers in 10,000 practices), on SQLite and PostgreSQL.

Targets (issue 3): search as you type p95 < 100 ms; a provider page with a five-year timeline p95 < 150 ms.
Each leg runs on the design-scale dataset (bench/dataset.py: the directory with 1,000,000 referrals, 300,000
liaison activities and letters, built once per database and cached in var/bench/), as the manager, who sees
every part of a timeline (referrals, activities, concerns, letters). The provider page is measured twice: any
provider, and the showcase provider, the busiest source, whose timeline is full for all five years.

Run: `.venv/bin/python -m bench bench_directory` (both legs), or one leg:
`.venv/bin/python -m bench.bench_directory --legs postgres`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys

from bench.common import ROOT, load_average, logged_in_client, measured, table, timed

LEGS = ("sqlite", "postgres")


def main(legs: tuple[str, ...] = LEGS) -> None:
    from bench.dataset import ensure_dataset

    rows = []
    for leg in legs:
        env = ensure_dataset(leg)
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_directory", "--leg", leg], env=env, cwd=ROOT, capture_output=True,
            text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"bench_directory --leg {leg} failed:\n{result.stdout}\n{result.stderr}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        for scenario, f in figures["scenarios"].items():
            target = 100 if scenario.startswith("search") else 150
            rows.append([leg, scenario, f["n"], f["p50"], f["p95"], f["max"], f["cpu"], target,
                         "ok" if f["p95"] < target else "MISSED"])  # fmt: skip
        print(
            f"{leg}: {figures['providers']:,} providers, {figures['practices']:,} practices; showcase timeline "
            f"{figures['showcase']}; load {figures['load']}",
            flush=True,
        )
    print(table(rows, ["database", "scenario", "n", "p50 ms", "p95 ms", "max ms", "CPU ms", "target p95", ""]))
    print("CPU ms: the mean CPU time of a request, the Django process's plus PostgreSQL's; wall times grow with")
    print("the machine's load, CPU time does not.")


def _leg() -> None:
    import django

    django.setup()
    from refloop.directory.models import ReferringPractice, ReferringProvider
    from refloop.letters.models import Letter
    from refloop.referrals.models import Referral

    client = logged_in_client("manager")
    showcase = ReferringProvider.objects.get(pk=int(os.environ["REFLOOP_BENCH_SHOWCASE_PROVIDER"]))
    rng = random.Random(7)
    names = list(ReferringProvider.objects.values_list("last_name", flat=True)[:5000])
    ids = list(ReferringProvider.objects.values_list("pk", flat=True))
    npis = [n for n in ReferringProvider.objects.values_list("npi", flat=True)[:2000] if n]

    def query() -> str:
        kind = rng.random()
        if kind < 0.7:
            name = rng.choice(names)
            return name[: rng.randint(2, min(6, len(name)))]
        if kind < 0.85:
            return rng.choice(npis)[: rng.randint(4, 10)]
        return f"{rng.choice(names)[:3]} {rng.choice(['dublin', 'columbus', 'md', 'np'])}"

    def search() -> None:
        response = client.get("/directory/", {"q": query()}, headers={"HX-Request": "true"})
        assert response.status_code == 200

    def global_search() -> None:
        response = client.get("/search/", {"q": query()}, headers={"HX-Request": "true"})
        assert response.status_code == 200

    def provider_page() -> None:
        response = client.get(f"/directory/providers/{rng.choice(ids)}/")
        assert response.status_code == 200

    def showcase_page() -> None:
        response = client.get(f"/directory/providers/{showcase.pk}/")
        assert response.status_code == 200

    timed(search, 20)  # warm caches and connections
    scenarios = {
        "search as you type (directory list)": measured(search, 300),
        "search box (global)": measured(global_search, 300),
        "provider page (any provider)": measured(provider_page, 200),
        "provider page (5-year timeline full)": measured(showcase_page, 100),
    }
    full = {
        "referrals": Referral.objects.filter(referring_provider=showcase).count(),
        "activities": showcase.outreach_activities.count(),
        "letters": Letter.objects.filter(provider=showcase).count(),
    }
    print(
        json.dumps(
            {
                "providers": len(ids),
                "practices": ReferringPractice.objects.count(),
                "showcase": full,
                "load": load_average(),
                "scenarios": scenarios,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--leg", choices=LEGS)
    parser.add_argument("--legs", nargs="+", choices=LEGS, default=list(LEGS))
    args = parser.parse_args()
    if args.leg:
        _leg()
    else:
        main(tuple(args.legs))
