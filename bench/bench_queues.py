"""Work queues and the referral page with 1,000,000 referrals, on SQLite and PostgreSQL.

Target (issue 4): every work queue page and the referral page render in under 150 ms (p95). Each leg runs in
its own process on the design-scale dataset (bench/dataset.py, built once and cached in var/bench/), through
Django's test client with a logged-in user, so a figure is the whole server side of a page: middleware, the
queries, the navigation counts, the template. Queue pages are asked the way people ask them: every queue,
"mine" as a coordinator and "everyone's" as the manager, with and without the location and urgency filters,
the first page and a later one, the whole page and the htmx partial that a tab or filter swaps in.

Run: `.venv/bin/python -m bench bench_queues` (both legs), or one leg:
`.venv/bin/python -m bench.bench_queues --legs postgres`.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys

from bench.common import ROOT, load_average, logged_in_client, measured, table, timed

LEGS = ("sqlite", "postgres")
TARGET_MS = 150
SAMPLES = 40  # per queue
REFERRAL_PAGES = 200


def main(legs: tuple[str, ...] = LEGS) -> None:
    from bench.dataset import ensure_dataset

    rows = []
    for leg in legs:
        env = ensure_dataset(leg)
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_queues", "--leg", leg], env=env, cwd=ROOT, capture_output=True,
            text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"bench_queues --leg {leg} failed:\n{result.stdout}\n{result.stderr}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{leg}: {figures['referrals']:,} referrals, {figures['open']:,} open; load {figures['load']}", flush=True
        )
        for scenario, f in figures["scenarios"].items():
            ok = "ok" if f["p95"] < TARGET_MS else "MISSED"
            rows.append([leg, scenario, f["n"], f["p50"], f["p95"], f["max"], f["cpu"], ok])
    header = ["database", "page", "n", "p50 ms", "p95 ms", "max ms", "CPU ms/page", f"p95 < {TARGET_MS} ms"]
    print(table(rows, header))
    print("CPU ms/page: the mean CPU time of a page, the Django process's plus PostgreSQL's (what the page costs")
    print("whatever else runs on the machine); the wall times grow with the machine's load.")


def _leg() -> None:
    import django

    django.setup()
    from refloop.practice.models import Location
    from refloop.referrals.models import Referral, Urgency
    from refloop.referrals.selectors import QUEUE_KEYS
    from refloop.referrals.workflow import OPEN_STATES

    rng = random.Random(11)
    clients = {username: logged_in_client(username) for username in ("coordinator", "manager")}
    locations = list(Location.objects.values_list("pk", flat=True))
    urgencies = list(Urgency.values)

    def queue_page(key: str) -> None:
        user = rng.choice(["coordinator", "manager"])
        params = {"queue": key, "scope": "mine" if user == "coordinator" else "all"}
        draw = rng.random()
        if draw < 0.25:
            params["location"] = rng.choice(locations)
        elif draw < 0.45:
            params["urgency"] = rng.choice(urgencies)
        elif draw < 0.55:
            params["location"], params["urgency"] = rng.choice(locations), rng.choice(urgencies)
        if rng.random() < 0.2:
            params["page"] = rng.randint(2, 6)
        headers = {"HX-Request": "true"} if rng.random() < 0.3 else {}
        response = clients[user].get("/referrals/", params, headers=headers)
        assert response.status_code == 200, response.status_code

    ids = list(
        Referral.objects.order_by("pk").values_list("pk", flat=True)[:: max(1, Referral.objects.count() // 5000)]
    )
    open_ids = list(Referral.objects.filter(state__in=OPEN_STATES).values_list("pk", flat=True)[:5000])

    def referral_page(choices: list[int]) -> None:
        response = clients["coordinator"].get(f"/referrals/{rng.choice(choices)}/")
        assert response.status_code == 200, response.status_code

    timed(lambda: queue_page("new"), 10)  # warm caches and the connection
    scenarios = {}
    for key in QUEUE_KEYS:
        scenarios[f"queue {key} (mine/all, filters, pages)"] = measured(lambda key=key: queue_page(key), SAMPLES)
    scenarios["referral page (any referral)"] = measured(lambda: referral_page(ids), REFERRAL_PAGES)
    scenarios["referral page (open referral)"] = measured(lambda: referral_page(open_ids), REFERRAL_PAGES // 2)
    print(
        json.dumps(
            {
                "referrals": Referral.objects.count(),
                "open": Referral.objects.filter(state__in=OPEN_STATES).count(),
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
