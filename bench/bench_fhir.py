"""FHIR referral intake under load: `POST /fhir/ServiceRequest` against `refloop serve` (gunicorn) on PostgreSQL.

Target (issue 8): at least 100 referrals/s sustained on this 2-core machine, p99 under 200 ms. The database
(refloop_bench_fhir) is dropped and created again, migrated, and given 200 referring providers and an API key
in a child process; the server runs as its own process group on a free port; CLIENTS threads, each with its
own keep-alive connection, post distinct ServiceRequests (contained Patient, requester by NPI, a placer
identifier of its own) for WARMUP seconds, then for SECONDS seconds measured. Every answer must be 201.

Run: `.venv/bin/python -m bench bench_fhir` (or `.venv/bin/python -m bench.bench_fhir --seconds 60 --clients 12`).
The client runs on the same two cores as the server, so the figures include its cost. Intakes queue their referrals
for the dashboard's rollups; `refloop rollups catch-up --every 5` runs beside the server as the worker would, and its
CPU (and its backend's) is counted with the intakes'. On a machine shared with
other work the rate says little, so the CPU each referral cost (gunicorn's processes, the PostgreSQL backends,
this client, read from /proc over the measured window) is printed too, with the rate two idle cores would allow.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.common import BENCH_DIR, PG_ADMIN_URL, ROOT, free_port, leg_env, load_average, percentile, table

NAME = "fhir"
DATABASE = f"refloop_bench_{NAME}"
BIN = Path(sys.executable).parent
PROVIDERS = 200
TARGET_RATE = 100.0
TARGET_P99_MS = 200.0
CATCH_UP_SECONDS = 5  # as the worker does (insights/rollups.py CATCH_UP_SECONDS)
FIRST = ["Ana", "Ben", "Carla", "Dev", "Eve", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Mo", "Nia"]
LAST = ["Shaw", "Baxter", "Okafor", "Nguyen", "Silva", "Kowalski", "Haddad", "Moreau", "Tanaka", "Rossi"]
REASONS = ["Knee pain after a fall", "Rotator cuff tear on MRI", "Lumbar radiculopathy", "Suspected meniscal tear"]


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _setup() -> None:
    """In the child process: the directory's providers and an API key; prints them as JSON."""
    import django

    django.setup()
    from refloop.directory.services import provider_create
    from refloop.interop.apikeys import apikey_create
    from refloop.lib.npi import make_npi

    npis = []
    for n in range(PROVIDERS):
        npi = make_npi(f"1{n + 30_000_000:08d}")
        provider_create(first_name=random.choice(FIRST), last_name=f"Referrer{n}", npi=npi, credentials="MD")
        npis.append(npi)
    _, raw = apikey_create(name="bench-ehr", scopes=["referrals.edit"])
    print(json.dumps({"key": raw, "npis": npis}))


def _service_request(serial: int, npi: str, rng: random.Random) -> bytes:
    body = {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5.1", "value": f"bench-{serial}"}],
        "status": "active",
        "intent": "order",
        "priority": rng.choice(["routine", "routine", "urgent"]),
        "code": {"text": "Orthopaedic consultation"},
        "reasonCode": [{"text": rng.choice(REASONS)}],
        "subject": {"reference": "#p"},
        "requester": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}},
        "authoredOn": "2026-11-27T10:00:00-05:00",
        "contained": [
            {
                "resourceType": "Patient",
                "id": "p",
                "name": [{"family": f"{rng.choice(LAST)}{serial}", "given": [rng.choice(FIRST)]}],
                "birthDate": f"19{rng.randint(30, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "gender": rng.choice(["female", "male"]),
            }
        ],
    }
    return json.dumps(body).encode()


class Load:
    def __init__(self, port: int, key: str, npis: list[str]):
        self.port, self.key, self.npis = port, key, npis
        self.serial = 0
        self.lock = threading.Lock()
        self.measuring = False
        self.stop = False
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def next_serial(self) -> int:
        with self.lock:
            self.serial += 1
            return self.serial

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/fhir+json"}
        while not self.stop:
            body = _service_request(self.next_serial(), rng.choice(self.npis), rng)
            # Counted when it starts inside the measured window: a request of the warm-up (the workers' first
            # ones, slowed by their lazy imports) that ends inside it would otherwise count its whole wait.
            counted = self.measuring
            start = time.perf_counter()
            try:
                conn.request("POST", "/fhir/ServiceRequest", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            elapsed = (time.perf_counter() - start) * 1000
            if counted:
                with self.lock:
                    if status == 201:
                        self.latencies.append(elapsed)
                    else:
                        self.errors.append(str(status))
        conn.close()


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    if int(handle.read().rsplit(")", 1)[1].split()[2]) == pgid:
                        pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def _database_pids() -> list[int]:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [DATABASE]).fetchall()
    return [row[0] for row in rows]


def _snapshot(pgid: int) -> tuple[dict[int, float], dict[int, float]]:
    return {p: _cpu(p) for p in _server_pids(pgid)}, {p: _cpu(p) for p in _database_pids()}


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


class BackendCpu:
    """The CPU of the database's backends over the measured window, read every 0.2 s. A backend does not live as long
    as the window: Django closes its connection at the end of a request once it is older than CONN_MAX_AGE (60 s)
    and the next request opens another, so a snapshot at each end alone missed the backends that ended in between
    (most of them in a 60 s run) and printed a fraction of PostgreSQL's cost. Each backend counts up to its last
    reading: at most 0.2 s of its work is lost when it ends."""

    def __init__(self, before: dict[int, float]) -> None:
        self.before = before
        self.last = dict(before)
        self.stop = threading.Event()

    def read(self) -> None:
        for pid in _database_pids():
            cpu = _cpu(pid)
            if cpu or pid not in self.last:  # 0.0: it ended between the listing and the reading
                self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def run(self) -> None:
        while not self.stop.wait(0.2):
            self.read()

    def used(self) -> float:
        self.read()
        return _used(self.before, self.last)


class LockWaits:
    """Samples pg_stat_activity while the load runs: how many of the intakes' backends are in a transaction, and
    how many of those wait for a lock (the audit chain's advisory lock, a rollup row, ...). Intakes that serialise
    show as most of them waiting on a lock; intakes that run side by side do not. On a loaded machine a lock holder
    that loses its core makes the others wait longer: compare runs taken under similar load."""

    def __init__(self) -> None:
        self.samples = 0
        self.states: dict[str, int] = {}
        self.waiting: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        query = ("SELECT state, wait_event_type, wait_event FROM pg_stat_activity WHERE datname = %s "
                 "AND state <> 'idle' AND pid <> pg_backend_pid()")  # fmt: skip
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            while not self.stop.wait(0.02):
                rows = conn.execute(query, [DATABASE]).fetchall()
                self.samples += 1
                for state, kind, event in rows:
                    self.states[state] = self.states.get(state, 0) + 1
                    if kind == "Lock":
                        self.waiting[event] = self.waiting.get(event, 0) + 1

    def summary(self) -> str:
        if not self.samples:
            return "no samples"
        n = self.samples
        states = ", ".join(f"{state} {count / n:.2f}" for state, count in sorted(self.states.items()))
        waits = ", ".join(f"{event} {count / n:.2f}" for event, count in sorted(self.waiting.items()))
        return (f"backends in a transaction on average: {states or 'none'}; waiting for a lock "
                f"{sum(self.waiting.values()) / n:.2f} ({waits or 'none'})")  # fmt: skip


def run(seconds: float, warmup: float, clients: int, workers: int, threads: int) -> None:
    env = leg_env("postgres", NAME)
    env.update(  # served as in production: DEBUG off (no query log in memory), cookies over plain HTTP
        {"REFLOOP_DEBUG": "0", "REFLOOP_SECRET_KEY": "fhir-bench-secret-key-not-for-production-0123456789abcdef",
         "REFLOOP_SECURE_COOKIES": "0"}
    )  # fmt: skip
    _recreate_database()
    subprocess.run([BIN / "refloop", "migrate", "--verbosity", "0"], env=env, cwd=ROOT, check=True)
    setup = subprocess.run([sys.executable, "-m", "bench.bench_fhir", "--setup"], env=env, cwd=ROOT,
                           check=True, capture_output=True, text=True)  # fmt: skip
    given = json.loads(setup.stdout.strip().splitlines()[-1])
    port = free_port()
    log = open(BENCH_DIR / f"{NAME}-web.log", "w")  # noqa: SIM115 - open for the server's lifetime
    server = subprocess.Popen(
        [BIN / "refloop", "serve", "--port", str(port), "--workers", str(workers), "--threads", str(threads)],
        env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    # The dashboard's sums: intakes queue their referrals and the worker folds them in every few seconds; that
    # work runs here as its own process, and its CPU is counted with the intakes'.
    catch_up = subprocess.Popen(
        [BIN / "refloop", "rollups", "catch-up", "--every", str(CATCH_UP_SECONDS)],
        env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(port, server)
        load = Load(port, given["key"], given["npis"])
        pool = [threading.Thread(target=load.client, args=(n,), daemon=True) for n in range(clients)]
        for thread in pool:
            thread.start()
        time.sleep(warmup)
        waits = LockWaits()
        sampler = threading.Thread(target=waits.run, daemon=True)
        cpu_before, client_before = _snapshot(server.pid), time.process_time()
        catch_up_before = _cpu(catch_up.pid)
        backends = BackendCpu(cpu_before[1])
        backend_reader = threading.Thread(target=backends.run, daemon=True)
        sampler.start()
        backend_reader.start()
        load.measuring = True
        started = time.perf_counter()
        time.sleep(seconds)
        load.measuring = False
        elapsed = time.perf_counter() - started
        waits.stop.set()
        backends.stop.set()
        sampler.join(timeout=10)
        backend_reader.join(timeout=10)
        cpu_after, client_cpu = _snapshot(server.pid), time.process_time() - client_before
        catch_up_cpu = _cpu(catch_up.pid) - catch_up_before
        db_cpu = backends.used()
        load.stop = True
        for thread in pool:
            thread.join(timeout=30)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        catch_up.terminate()
        server.wait(timeout=30)
        catch_up.wait(timeout=30)
        log.close()
    ordered = sorted(load.latencies)
    rate = len(ordered) / elapsed
    p99 = percentile(ordered, 0.99)
    rows = [[
        "POST /fhir/ServiceRequest", clients, f"{workers}x{threads}", len(ordered), len(load.errors), rate,
        percentile(ordered, 0.50), percentile(ordered, 0.95), p99,
        "yes" if rate >= TARGET_RATE and p99 < TARGET_P99_MS and not load.errors else "NO",
    ]]  # fmt: skip
    header = ["interaction", "clients", "gunicorn", "201s", "errors", "per s", "p50 ms", "p95 ms", "p99 ms",
              f"meets >={TARGET_RATE:.0f}/s, p99<{TARGET_P99_MS:.0f}ms"]  # fmt: skip
    print(table(rows, header))
    if load.errors:
        print("errors:", sorted(set(load.errors))[:10])
    print(f"measured {elapsed:.1f} s after {warmup:.0f} s of warm-up; load average {load_average()}")
    print(f"PostgreSQL, sampled every 20 ms: {waits.summary()}")
    # What one referral costs in CPU, whatever else the machine is doing: the rate two idle cores would allow.
    count = max(len(ordered), 1)
    web_ms = _used(cpu_before[0], cpu_after[0]) * 1000 / count
    db_ms = db_cpu * 1000 / count
    client_ms = client_cpu * 1000 / count
    catch_up_ms = catch_up_cpu * 1000 / count
    print(
        f"CPU per referral: gunicorn {web_ms:.1f} ms, rollup catch-up {catch_up_ms:.1f} ms, PostgreSQL {db_ms:.1f} ms "
        f"(the catch-up's backend included), this client {client_ms:.1f} ms; two idle cores would allow about "
        f"{2000 / (web_ms + catch_up_ms + db_ms + client_ms):.0f} referrals/s"
    )


def _wait_for(port: int, server: subprocess.Popen) -> None:
    """Until the server answers; `refloop serve` runs collectstatic first, which takes a while on a busy machine."""
    for _ in range(1200):
        if server.poll() is not None:
            break
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/fhir/metadata")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not start; see {BENCH_DIR / f'{NAME}-web.log'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_fhir", description=__doc__)
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(sys.argv[1:] if argv is None and __name__ == "__main__" else argv or [])
    if args.setup:
        _setup()
        return
    run(args.seconds, args.warmup, args.clients, args.workers, args.threads)


if __name__ == "__main__":
    main()
