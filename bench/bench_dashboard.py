"""The manager's dashboard and its drill-down lists with 1,000,000 referrals, on SQLite and PostgreSQL.

Target (issue 7): the dashboard renders in under 300 ms (p95) for any filter; drill-down lists in under 150 ms.
Each leg runs in its own process on the design-scale dataset (bench/dataset.py), through Django's test client
logged in as the demo manager, so a figure is the whole server side of the page: middleware, the rollup
queries, the navigation counts, the charts' JSON and the template. The rollups are rebuilt first when the
dataset does not have them yet, or with --rebuild (`rollup_rebuild()`, timed and reported). The top, new and
growing source lists load after the page (htmx) and are timed on their own. Filters are drawn at random from
every combination the form offers: none, each dimension alone, pairs, and all of them, over periods of one to
60 months (the longest the form accepts); drill-downs from the figures a manager clicks (a month of the trend, a
source type, a payer, a lost reason, a provider, the turnaround buckets), first page and a later one.

Run: `.venv/bin/python -m bench bench_dashboard` (both legs), or one leg:
`.venv/bin/python -m bench.bench_dashboard --legs postgres`. `--dataset tiny` runs the same on the tiny demo
(a check of the benchmark itself, not a measurement).
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
DASHBOARD_TARGET_MS = 300
DRILLDOWN_TARGET_MS = 150
SAMPLES = 30  # per scenario
PERIODS = (1, 3, 3, 6, 12, 24, 60)  # months; the form accepts up to 60


def main(legs: tuple[str, ...] = LEGS, dataset: str = "design", rebuild: bool = False) -> None:
    rows = []
    for leg in legs:
        if dataset == "design":
            from bench.dataset import ensure_dataset

            env = ensure_dataset(leg)
        else:
            env = leg_env(leg, "dashboard_tiny")
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_dashboard", "--leg", leg, "--dataset", dataset]
            + (["--rebuild"] if rebuild else []),
            env=env, cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"bench_dashboard --leg {leg} failed:\n{result.stdout}\n{result.stderr}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{leg}: {figures['referrals']:,} referrals, {figures['providers']:,} providers, "
            f"{figures['cube_rows']:,} cuboid rows, {figures['source_rows']:,} source rows; "
            f"rollup rebuild {figures['rebuild_s']} s; load {figures['load']}",
            flush=True,
        )
        for scenario, f in figures["scenarios"].items():
            target = DRILLDOWN_TARGET_MS if scenario.startswith("drill-down") else DASHBOARD_TARGET_MS
            ok = "ok" if f["p95"] < target else "MISSED"
            rows.append([leg, scenario, f["n"], f["p50"], f["p95"], f["max"], target, ok])
    print(table(rows, ["database", "page", "n", "p50 ms", "p95 ms", "max ms", "target", "p95 ok"]))


def _client(username: str):
    from django.test import Client

    from refloop.accounts.models import User

    user = User.objects.get(username=username)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    try:  # the second factor, as after a real login, where the role requires it
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            device = TOTPDevice(user=user, name="bench", confirmed=True)
            device.save()
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    except ImportError:
        pass
    return client


def _leg(dataset: str, rebuild: bool) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # the rollup tables, when the dataset predates them
    if dataset == "tiny":
        from refloop import demo

        demo.load(seed=7, scale="tiny")

    from django.contrib.auth import get_user_model

    from refloop.directory.models import ReferringProvider, Territory
    from refloop.insights.filters import add_months, default_period
    from refloop.insights.models import ReferralRollup, RollupMember, SourceRollup
    from refloop.insights.rollups import cuboid_for, rollup_rebuild
    from refloop.practice.models import Clinician, Location
    from refloop.referrals.models import Referral, Urgency

    rebuild_s = 0.0
    if rebuild or RollupMember.objects.count() != Referral.objects.count():
        started = time.perf_counter()
        rollup_rebuild()
        rebuild_s = round(time.perf_counter() - started, 1)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    rng = random.Random(7)
    client = _client("manager")
    values = {
        "location": list(Location.objects.values_list("pk", flat=True)),
        "clinician": list(Clinician.objects.values_list("pk", flat=True)),
        "territory": list(Territory.objects.values_list("pk", flat=True)),
        "liaison": list(get_user_model().objects.filter(role="liaison").values_list("pk", flat=True)),
        "payer": [
            p
            for p in ReferralRollup.objects.filter(cuboid=cuboid_for(())).values_list("payer", flat=True).distinct()
            if p
        ],
        "urgency": list(Urgency.values),
        "specialty": list(
            ReferralRollup.objects.filter(cuboid=cuboid_for(["specialty"]))
            .exclude(specialty="")
            .values_list("specialty", flat=True)
            .distinct()
        ),
    }
    names = [name for name, options in values.items() if options]
    _, end = default_period()

    def period(months: int) -> dict[str, str]:
        return {"start": f"{add_months(end, -(months - 1)):%Y-%m}", "end": f"{end:%Y-%m}"}

    def pick(*dims: str) -> dict[str, object]:
        return {d: rng.choice(values[d]) for d in dims if values.get(d)}

    def dashboard(dims_fn) -> None:
        params = period(rng.choice(PERIODS)) | dims_fn()
        response = client.get("/insights/", params)
        assert response.status_code == 200, (response.status_code, params)

    def source_lists(dims_fn) -> None:
        params = period(rng.choice(PERIODS)) | dims_fn()  # the periods the dashboard is asked for
        response = client.get("/insights/sources/", params, headers={"HX-Request": "true"})
        assert response.status_code == 200, (response.status_code, params)

    def drilldown(extra_fn) -> None:
        params = period(rng.choice([1, 3, 12, 60])) | extra_fn()
        if rng.random() < 0.3:
            params["page"] = rng.randint(2, 4)
        response = client.get("/insights/referrals/", params)
        assert response.status_code == 200, (response.status_code, params)

    busy = list(
        SourceRollup.objects.filter(kind="provider", urgency="*", location_id=-1, clinician_id=-1, payer="*")
        .order_by("-received")
        .values_list("source_id", flat=True)[:200]
    )
    months = [f"{add_months(end, -i):%Y-%m}" for i in range(24)]

    timed(lambda: dashboard(dict), 3)  # warm caches and the connection
    timed(lambda: source_lists(dict), 1)  # and the source lists' pages, as the dashboard's are
    scenarios = {}
    scenarios["dashboard, no filter"] = summary(timed(lambda: dashboard(dict), SAMPLES))
    scenarios["dashboard, one filter (any)"] = summary(
        timed(lambda: dashboard(lambda: pick(rng.choice(names))), SAMPLES)
    )
    scenarios["dashboard, territory"] = summary(timed(lambda: dashboard(lambda: pick("territory")), SAMPLES))
    scenarios["dashboard, two filters (any)"] = summary(
        timed(lambda: dashboard(lambda: pick(*rng.sample(names, 2))), SAMPLES)
    )
    scenarios["dashboard, location+urgency"] = summary(
        timed(lambda: dashboard(lambda: pick("location", "urgency")), SAMPLES)
    )
    scenarios["dashboard, every filter"] = summary(timed(lambda: dashboard(lambda: pick(*names)), SAMPLES))
    # As many samples as the other pages: with a third of them, p95 was the single slowest request.
    scenarios["source lists (after the page), no filter"] = summary(timed(lambda: source_lists(dict), SAMPLES))
    scenarios["source lists (after the page), any filters"] = summary(
        timed(lambda: source_lists(lambda: pick(*rng.sample(names, rng.randint(1, 3)))), SAMPLES)
    )
    scenarios["drill-down, received in period"] = summary(timed(lambda: drilldown(dict), SAMPLES))
    scenarios["drill-down, a month of the trend"] = summary(
        timed(lambda: drilldown(lambda: {"month": rng.choice(months), "measure": "seen"}), SAMPLES)
    )
    scenarios["drill-down, a provider"] = summary(
        timed(lambda: drilldown(lambda: {"provider": rng.choice(busy)}), SAMPLES)
    )
    scenarios["drill-down, a lost reason + filter"] = summary(
        timed(lambda: drilldown(lambda: {"measure": "lost_went_elsewhere"} | pick(rng.choice(names))), SAMPLES)
    )
    scenarios["drill-down, a turnaround bucket"] = summary(
        timed(lambda: drilldown(lambda: {"measure": "report_sent", "turnaround": rng.randint(0, 6)}), SAMPLES)
    )
    scenarios["drill-down, a source type + territory"] = summary(
        timed(lambda: drilldown(lambda: {"kind": rng.choice(["provider", "self", "hospital"])} | pick("territory")),
              SAMPLES)
    )  # fmt: skip
    print(
        json.dumps(
            {
                "referrals": Referral.objects.count(),
                "providers": ReferringProvider.objects.count(),
                "cube_rows": ReferralRollup.objects.count(),
                "source_rows": SourceRollup.objects.count(),
                "rebuild_s": rebuild_s,
                "load": load_average(),
                "scenarios": scenarios,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--leg", choices=LEGS)
    parser.add_argument("--legs", nargs="+", choices=LEGS, default=list(LEGS))
    parser.add_argument("--dataset", choices=["design", "tiny"], default="design")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the rollups even when they look complete")
    args = parser.parse_args()
    if args.leg:
        _leg(args.dataset, args.rebuild)
    else:
        main(tuple(args.legs), args.dataset, args.rebuild)
