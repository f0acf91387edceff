"""Helpers shared by the benchmarks: isolated databases at the design scale, timing and tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
PG_ADMIN_URL = os.environ.get("REFLOOP_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")


def leg_env(leg: str, name: str) -> dict[str, str]:
    """Environment for a benchmark process on SQLite or PostgreSQL, never touching var/refloop.sqlite3."""
    data_dir = BENCH_DIR / f"{name}-{leg}"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        {
            "REFLOOP_DEBUG": "1",
            "REFLOOP_DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "refloop.settings",
        }
    )
    if leg == "postgres":
        database = f"refloop_bench_{name}"
        _ensure_pg_database(database)
        env["DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    return env


def _ensure_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def run_leg(module: str, leg: str, name: str, *args: str) -> str:
    """Run `python -m module --leg leg` in its own process (Django settings are per process)."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--leg", leg, *args],
        env=leg_env(leg, name), cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{module} --leg {leg} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def percentile(ordered: list[float], q: float) -> float:
    """The q-quantile (0.95, 0.99) of already sorted samples, nearest rank; NaN when there are none."""
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(samples),
        "p50": statistics.median(ordered),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
    }


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now, for a server a benchmark starts."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def table(rows: list[list[object]], header: list[str]) -> str:
    cells = [header] + [[f"{c:.1f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, printed beside timings taken on a shared machine."""
    try:
        with open("/proc/loadavg") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "?"


def logged_in_client(username: str):
    """A Django test client logged in as `username` of the database in use, its second factor given (as after a
    real login): roles that must use two-factor get a benchmark authenticator device the first time."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from refloop.accounts.models import User

    user = User.objects.get(username=username)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="Benchmark", defaults={"confirmed": True})
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _server_seconds(pid: int | None) -> float:
    """CPU seconds the PostgreSQL backend `pid` has used (clock ticks of /proc, 10 ms each); 0 without one."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """`summary` of the wall times of `repeat` calls, with the mean CPU time a call cost: this process's, plus
    the PostgreSQL backend's when the database is a local PostgreSQL. On a machine that others share, wall
    times grow with the load while the CPU time stays what the page costs."""
    from django.db import connection

    pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
    cpu, server = time.process_time(), _server_seconds(pid)
    figures = summary(timed(fn, repeat))
    figures["cpu"] = ((time.process_time() - cpu) + (_server_seconds(pid) - server)) * 1000 / repeat
    return figures
