"""The MLLP listener under load: REF^I12 referrals over TCP, on SQLite and PostgreSQL, and the worker that makes
the referrals of the messages the listener queued.

Target (issue 8): at least 200 REF^I12 messages/s sustained, with the ACK's p99 under 100 ms. Each leg migrates
its own database (var/bench/mllp-<leg>, or PostgreSQL refloop_bench_mllp), fills a directory of referring
providers, starts `refloop hl7 listen` and `refloop worker` as their own processes, and sends from this process
over real TCP:

- sustained: several sender connections together offer 200 messages/s for DURATION seconds (open loop: each
  message has its due time, and its latency counts from that time, so a slow ACK delays the next message's
  latency as well and a backlog cannot hide);
  A sender that falls GIVE_UP_BEHIND seconds behind stops: the rate was not sustained, and the table says so;
- flat out: the same connections send as fast as the ACKs come back, to show the headroom.

The listener runs as PROCESSES processes sharing the port (`refloop hl7 listen --processes N`). The listener
answers once the message is validated and queued; the worker (WORKERS processes on PostgreSQL, which claim
batches with SKIP LOCKED, one on SQLite, whose one writer a second could not use; running while the messages
come) makes the referrals. After each run the bench waits until no message is queued, and reports the worker's
drain: referrals made per second from the run's start until the queue was empty, the seconds from the last
ACK until the last referral existed, and the worker's CPU per referral. Every queued message must end
"accepted" (none "failed").

Each message is a new referral (new patient, new MSH-10); nine in ten referring NPIs are in the directory, the
rest are new providers. Every ACK must be AA.

Run: `.venv/bin/python -m bench bench_mllp`, or one leg: `.venv/bin/python -m bench.bench_mllp --legs sqlite`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid

from bench.common import ROOT, free_port, leg_env, load_average, percentile, table

LEGS = ("sqlite", "postgres")
RATE = 200  # messages per second offered in the sustained run
DURATION = 20  # seconds
SENDERS = 4
PROCESSES = 2  # `refloop hl7 listen --processes`: listener processes sharing the port
GIVE_UP_BEHIND = 10  # seconds: a sender this far behind its schedule stops (the rate was not sustained)
FLAT_OUT_MESSAGES = 600
PROVIDERS = 500
TARGET_P99_MS = 100
# With PostgreSQL the worker runs at a lower CPU priority than the listener (as the README advises): the ACKs
# have a deadline, the referrals follow on the CPU left over. Not with SQLite: there the worker's transaction
# holds the one write lock the listener's INSERTs wait for, and a niced worker descheduled while holding it
# makes the listener wait longer (priority inversion: ACK p50 2.1 s at load 10 in a trial).
WORKER_NICE = {"sqlite": 0, "postgres": 10}
WORKERS = {"sqlite": 1, "postgres": 2}
DRAIN_TIMEOUT = 600  # seconds after the last ACK for the worker to empty the queue


def main(legs: tuple[str, ...] = LEGS, duration: int = DURATION) -> None:
    rows = []
    drain_rows = []
    for leg in legs:
        env = leg_env(leg, "mllp")
        migrate = subprocess.run(
            [sys.executable, "-m", "refloop.cli", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT,
            capture_output=True, text=True,
        )  # fmt: skip
        if migrate.returncode != 0:
            raise SystemExit(f"migrate ({leg}) failed:\n{migrate.stdout}\n{migrate.stderr}")
        result = subprocess.run(
            [sys.executable, "-m", "bench.bench_mllp", "--leg", leg, "--duration", str(duration)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SystemExit(f"bench_mllp --leg {leg} failed:\n{result.stdout}\n{result.stderr}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{leg}: load {figures['load']}", flush=True)
        for name, f in figures["runs"].items():
            drain_rows.append(
                [leg, name, f["made"], f["failed"], f["drain_rate"], f["after_last_ack"], f["worker_cpu"]]
            )
        for name, f in figures["runs"].items():
            kept_up = f.get("offered", f["n"]) == f["n"]
            ok = "ok" if kept_up and f["rate"] >= RATE and f["p99"] < TARGET_P99_MS and not f["refused"] else "MISSED"
            if name == "flat out":
                ok = "ok" if f["refused"] == 0 else "MISSED"
            rows.append(
                [
                    leg,
                    name,
                    f"{f['n']}/{f.get('offered', f['n'])}",
                    f["rate"],
                    f["p50"],
                    f["p95"],
                    f["p99"],
                    f["max"],
                    f["refused"],
                    f["cpu"],
                    1000 / f["cpu"] if f["cpu"] else 0.0,
                    ok,
                ]
            )
    print(
        table(
            rows,
            [
                "database",
                "run",
                "answered/offered",
                "msg/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "not AA",
                "listener CPU ms/msg",
                "msg/s per core",
                f">= {RATE}/s, p99 < {TARGET_P99_MS} ms",
            ],
        )
    )
    print()
    print(
        table(
            drain_rows,
            [
                "database",
                "run",
                "referrals made",
                "failed",
                "referrals/s (run start to queue empty)",
                "s from last ACK to last referral",
                "worker CPU ms/referral",
            ],
        )
    )


def _message(n: int, run: str, npi: str, rng: random.Random) -> bytes:
    now = time.strftime("%Y%m%d%H%M%S")
    birth = f"19{rng.randint(30, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    segments = [
        f"MSH|^~\\&|EHR|CLINIC-{n % 7}|REFLOOP|ORTHO|{now}||REF^I12^REF_I12|{run}-{n}|P|2.5.1|||AL|NE||UNICODE UTF-8",
        f"RF1|P^Pending^HL70283|R^Routine^HL70280|Med^Medical^HL70281|||{run}-R{n}|{now}",
        f"PRD|RP^Referring Provider|Referrer{npi[-4:]}^Dana^^^^MD|||(614) 555-0100^WPN^PH||{npi}^NPI",
        f"PID|1||{run}-P{n}^^^CLINIC^MR||Patient{n}^Bench^^^^^L||{birth}|{rng.choice('FM')}"
        "|||12 Main St^^Columbus^OH^43215",
        "DG1|1||M25.561^Pain in right knee^I10",
        "NTE|||Right knee pain after a fall, please evaluate|^REASON_FOR_CONSULTATION",
    ]
    return ("\r".join(segments) + "\r").encode()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            pids += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    for one in pids:
        try:
            with open(f"/proc/{one}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return total


def _vacuum() -> None:
    """PostgreSQL here runs without autovacuum: the rollup rows every referral updates would carry the dead
    versions of every earlier run (a run leaves thousands), and each update would walk them."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE insights_referralrollup, insights_sourcerollup, interop_interfacemessage")


def _wait_drained(begun: float, worker_pids: list[int] = (), worker_cpu: float = 0.0, run: str = "") -> dict:
    """Wait until the worker has taken every queued message; its figures for the messages of `run`."""
    from refloop.interop.models import InterfaceMessage

    inbound = InterfaceMessage.objects.filter(direction="in", protocol="hl7v2")
    last_ack = time.perf_counter()
    deadline = last_ack + DRAIN_TIMEOUT
    while inbound.filter(status="queued").exists():
        if time.perf_counter() > deadline:
            raise SystemExit(f"the worker left messages queued {DRAIN_TIMEOUT} s after the last ACK")
        time.sleep(0.1)
    done = time.perf_counter()
    mine = inbound.filter(control_id__startswith=f"{run}-") if run else inbound.none()
    made = mine.filter(status="accepted").count()
    cpu = (_cpus(worker_pids) - worker_cpu) * 1000 / max(1, made)
    return {
        "made": made,
        "failed": mine.exclude(status="accepted").count(),
        "drain_rate": made / (done - begun),
        "after_last_ack": done - last_ack,
        "worker_cpu": cpu,
    }


def _figures(latencies: list[float], refused: int, seconds: float) -> dict:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "rate": len(ordered) / seconds,
        "p50": percentile(ordered, 0.5),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1],
        "refused": refused,
    }


def _send_all(port: int, plan: list[list[tuple[float | None, bytes]]]) -> tuple[list[float], int, float]:
    """Each sender sends its (due time, message) list in order; latency counts from the due time (None: send at
    once when the previous ACK is in, latency from sending)."""
    from refloop.interop.hl7.ack import ack_code_of
    from refloop.interop.hl7.mllp import MllpClient

    latencies: list[float] = []
    refused = [0]
    lock = threading.Lock()
    start = time.perf_counter()

    def sender(items: list[tuple[float | None, bytes]]) -> None:
        mine, bad = [], 0
        with MllpClient("127.0.0.1", port, timeout=60) as client:
            for due, payload in items:
                due_at = start + due if due is not None else time.perf_counter()
                wait = due_at - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                if due is not None and time.perf_counter() - due_at > GIVE_UP_BEHIND:
                    break
                answer = client.send(payload).decode()
                mine.append((time.perf_counter() - due_at) * 1000)
                bad += ack_code_of(answer) != "AA"
        with lock:
            latencies.extend(mine)
            refused[0] += bad

    threads = [threading.Thread(target=sender, args=(items,)) for items in plan]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, refused[0], time.perf_counter() - start


def _cpus(pids: list[int]) -> float:
    return sum(_cpu_seconds(pid) for pid in pids)


def _leg(leg: str, duration: int) -> None:
    import django

    django.setup()
    from refloop.directory.models import ReferringProvider, Source
    from refloop.interop.hl7.mllp import wait_for_port
    from refloop.interop.models import InterfaceMessage
    from refloop.lib.npi import make_npi

    # messages an interrupted run left queued would be counted in this run's drain
    InterfaceMessage.objects.filter(direction="in", protocol="hl7v2", status="queued").delete()
    _vacuum()
    rng = random.Random(8)
    known = list(ReferringProvider.objects.exclude(npi="").values_list("npi", flat=True)[:PROVIDERS])
    if len(known) < PROVIDERS:
        fresh = [make_npi(f"1{rng.randrange(10**8):08d}") for _ in range(PROVIDERS - len(known))]
        fresh = [n for n in dict.fromkeys(fresh) if n not in known]
        ReferringProvider.objects.bulk_create(
            [ReferringProvider(npi=n, first_name="Dana", last_name=f"Referrer{n[-4:]}", source=Source.IMPORT)
             for n in fresh],
            ignore_conflicts=True,
        )  # fmt: skip
        known = list(ReferringProvider.objects.exclude(npi="").values_list("npi", flat=True)[:PROVIDERS])

    def npi() -> str:
        return rng.choice(known) if rng.random() < 0.9 else make_npi(f"1{rng.randrange(10**8):08d}")

    port = free_port()
    log = open(os.path.join(os.environ["REFLOOP_DATA_DIR"], "listener.log"), "w")  # noqa: SIM115
    # production settings for the listener (DEBUG keeps a log of every query)
    production = os.environ | {"REFLOOP_DEBUG": "0", "REFLOOP_SECRET_KEY": secrets.token_urlsafe(50)}
    listener = subprocess.Popen(
        [sys.executable, "-m", "refloop.cli", "hl7", "listen", "--port", str(port), "--processes", str(PROCESSES)],
        env=production, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    workers = [
        subprocess.Popen(
            ["nice", "-n", str(WORKER_NICE[leg]), sys.executable, "-m", "refloop.cli", "worker", "--interval", "0.2"],
            env=production, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        for _ in range(WORKERS[leg])
    ]  # fmt: skip
    worker_pids = [w.pid for w in workers]
    runs = {}
    try:
        wait_for_port("127.0.0.1", port, 60)
        run = uuid.uuid4().hex[:8]
        # warm-up: imports, connections, the first queries' plans
        warm = [[(0.0, _message(i * SENDERS + s, run + "w", npi(), rng)) for i in range(25)] for s in range(SENDERS)]
        _send_all(port, warm)
        _wait_drained(time.perf_counter())
        _vacuum()
        total = RATE * duration
        plan = [[] for _ in range(SENDERS)]
        for n in range(total):
            plan[n % SENDERS].append((n / RATE, _message(n, run + "s", npi(), rng)))
        cpu, worker_cpu, begun = _cpu_seconds(listener.pid), _cpus(worker_pids), time.perf_counter()
        latencies, refused, seconds = _send_all(port, plan)
        cpu_ms = (_cpu_seconds(listener.pid) - cpu) * 1000 / max(1, len(latencies))
        drain = _wait_drained(begun, worker_pids, worker_cpu, run + "s")
        runs["sustained"] = (
            # open loop: the rate offered is the rate answered when every message was answered (none given up),
            # its lateness is in the percentiles
            _figures(latencies, refused, duration if len(latencies) == total else seconds)
            | {"offered": total, "cpu": cpu_ms}
            | drain
        )
        _vacuum()
        flat = [[] for _ in range(SENDERS)]
        for n in range(FLAT_OUT_MESSAGES):
            flat[n % SENDERS].append((None, _message(n, run + "f", npi(), rng)))
        cpu, worker_cpu, begun = _cpu_seconds(listener.pid), _cpus(worker_pids), time.perf_counter()
        latencies, refused, seconds = _send_all(port, flat)
        cpu_ms = (_cpu_seconds(listener.pid) - cpu) * 1000 / max(1, len(latencies))
        drain = _wait_drained(begun, worker_pids, worker_cpu, run + "f")
        runs["flat out"] = _figures(latencies, refused, seconds) | {"cpu": cpu_ms} | drain
    finally:
        for process in (listener, *workers):
            process.send_signal(signal.SIGTERM)
        for process in (listener, *workers):
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
    print(json.dumps({"load": load_average(), "runs": runs}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--leg", choices=LEGS)
    parser.add_argument("--legs", nargs="*", choices=LEGS, default=list(LEGS))
    parser.add_argument("--duration", type=int, default=DURATION, help="seconds of the sustained run")
    args = parser.parse_args()
    if args.leg:
        _leg(args.leg, args.duration)
    else:
        main(tuple(args.legs), args.duration)
