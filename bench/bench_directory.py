"""Directory at design scale (25,000 referring providers in 10,000 practices), on SQLite and PostgreSQL.

Targets (issue 3): search as you type p95 < 100 ms; a provider page p95 < 150 ms. Each leg generates the
large practice once (`refloop generate --scale large`, through the product's services) and reuses it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from bench.common import run_leg, summary, table, timed

LEGS = ("sqlite", "postgres")


def main() -> None:
    rows = []
    for leg in LEGS:
        result = json.loads(run_leg("bench.bench_directory", leg, "large").strip().splitlines()[-1])
        for scenario, figures in result["scenarios"].items():
            target = 100 if scenario.startswith("search") else 150
            rows.append([leg, scenario, figures["n"], figures["p50"], figures["p95"], figures["max"], target,
                         "ok" if figures["p95"] < target else "MISSED"])  # fmt: skip
        print(f"{leg}: {result['providers']} providers, {result['practices']} practices", flush=True)
    print(table(rows, ["database", "scenario", "n", "p50 ms", "p95 ms", "max ms", "target p95", ""]))


def _leg() -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from refloop import demo
    from refloop.accounts.models import User
    from refloop.directory.models import ReferringPractice, ReferringProvider

    call_command("migrate", verbosity=0)
    if not demo.is_loaded():
        print("generating the large practice (once per database)...", file=sys.stderr, flush=True)
        demo.load(scale="large", seed=2026)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(User.objects.get(username="coordinator"))
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

    timed(search, 20)  # warm caches and connections
    scenarios = {
        "search as you type (directory list)": summary(timed(search, 300)),
        "search box (global)": summary(timed(global_search, 300)),
        "provider page": summary(timed(provider_page, 200)),
    }
    print(
        json.dumps(
            {"providers": len(ids), "practices": ReferringPractice.objects.count(), "scenarios": scenarios}
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--leg", choices=LEGS)
    if parser.parse_args().leg:
        _leg()
    else:
        main()
