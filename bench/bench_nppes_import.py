"""NPPES import at scale: a 1,000,000-row file in the real format, filtered to one state.

Compares (a) DuckDB alone scanning the file and filtering it to one state, reading the same columns the
import reads, with (b) the whole `refloop import-nppes --state XX` into a fresh SQLite database, run in a
subprocess so its peak memory can be measured. Targets: (b) takes at most twice (a), and stays under 1 GB.

The generated file is cached under var/bench/ (about 1.1 GB) and reused, because writing it takes longer
than the import itself. The real 330-column header is read from shared/reference (never copied here).
"""

from __future__ import annotations

import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROWS = 1_000_000
REPEATS = 3
STATE = "OH"
PROJECT_DIR = Path(__file__).resolve().parent.parent
CACHE_DIR = PROJECT_DIR / "var" / "bench"

# Rough shares of NPPES rows by practice-location state; the rest spread over the other states.
STATE_WEIGHTS = {
    "CA": 12.0, "TX": 8.0, "FL": 7.0, "NY": 7.0, "PA": 4.5, "IL": 4.0, "OH": 3.8, "MI": 3.2, "NC": 3.2,
    "GA": 3.0, "NJ": 3.0, "MA": 3.0, "VA": 2.5, "WA": 2.4, "AZ": 2.2, "TN": 2.1, "MD": 2.1, "IN": 2.0,
    "MO": 1.9, "MN": 1.9, "WI": 1.8, "CO": 1.8, "SC": 1.5, "AL": 1.4, "LA": 1.4, "KY": 1.4, "OR": 1.3,
    "CT": 1.2, "OK": 1.1, "IA": 1.0, "UT": 0.9, "AR": 0.9, "KS": 0.9, "MS": 0.8, "NV": 0.8, "NM": 0.6,
    "NE": 0.6, "WV": 0.6, "ID": 0.5, "HI": 0.4, "NH": 0.5, "ME": 0.5, "RI": 0.4, "MT": 0.4, "DE": 0.3,
    "SD": 0.3, "ND": 0.3, "AK": 0.2, "VT": 0.2, "WY": 0.2, "DC": 0.4, "PR": 0.5,
}  # fmt: skip
TAXONOMIES = [
    "207Q00000X", "207R00000X", "207RC0000X", "208000000X", "207V00000X", "207X00000X", "363LF0000X",
    "363A00000X", "225100000X", "1223G0001X", "122300000X", "152W00000X", "111N00000X", "207P00000X",
    "2084P0800X", "103T00000X", "1041C0700X", "207L00000X", "2085R0202X", "208600000X", "390200000X",
]  # fmt: skip
ORG_TAXONOMIES = ["193200000X", "193400000X", "261QP2300X", "261QU0200X", "282N00000X", "332B00000X"]
FIRST = [
    "JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID", "ELIZABETH",
    "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSÉ", "MARÍA", "WEI", "PRIYA", "AHMED", "CHLOË",
]  # fmt: skip
LAST = [
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
    "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "NGUYEN", "PATEL", "MÜLLER", "O'BRIEN",
]  # fmt: skip
CREDENTIALS = ["MD", "M.D.", "DO", "NP", "PA-C", "DDS", "DMD", "PT, DPT", "OD", "DC", "LCSW", "PHD", ""]
STREETS = [
    "MAIN ST",
    "HIGH ST",
    "BROAD ST",
    "OAK AVE",
    "MAPLE DR",
    "PARK BLVD",
    "MEDICAL CENTER DR",
    "ELM ST",
]
CITIES = ["SPRINGFIELD", "FRANKLIN", "GREENVILLE", "CLINTON", "FAIRVIEW", "SALEM", "MADISON", "GEORGETOWN"]
ORG_WORDS = ["FAMILY", "MEDICAL", "HEALTH", "CARE", "ORTHOPAEDIC", "DENTAL", "PEDIATRIC", "CARDIOLOGY"]


def reference_dir() -> Path:
    default = PROJECT_DIR.parent / "shared" / "reference"
    return Path(os.environ.get("REFLOOP_REFERENCE_DIR", default))


def real_header() -> list[str]:
    path = reference_dir() / "nppes" / "npidata_pfile_header_June2025_V2.csv"
    with path.open(encoding="iso-8859-1", newline="") as handle:
        return next(csv.reader(handle))


def generate(path: Path, rows: int = ROWS, seed: int = 20250608) -> None:
    """Write `rows` NPPES rows: every value quoted, ISO-8859-1, CRLF, with the shapes the real file has.

    About 80% individuals and 18% organizations with 1-3 taxonomies each, and 2% deactivated NPIs that,
    as in the real file, carry nothing but the NPI and the deactivation date.
    """
    from refloop.lib.npi import make_npi

    header = real_header()
    col = {name: index for index, name in enumerate(header)}
    states = list(STATE_WEIGHTS)
    cumulative = []
    total = 0.0
    for state in states:
        total += STATE_WEIGHTS[state]
        cumulative.append(total)
    rng = random.Random(seed)
    blank = [""] * len(header)
    tmp = path.with_suffix(".part")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    loc = [col[f"Provider {part}"] for part in (
        "First Line Business Practice Location Address", "Second Line Business Practice Location Address",
        "Business Practice Location Address City Name", "Business Practice Location Address State Name",
        "Business Practice Location Address Postal Code",
        "Business Practice Location Address Country Code (If outside U.S.)",
        "Business Practice Location Address Telephone Number",
        "Business Practice Location Address Fax Number",
    )]  # fmt: skip
    mail = [col[f"Provider {part}"] for part in (
        "First Line Business Mailing Address", "Second Line Business Mailing Address",
        "Business Mailing Address City Name", "Business Mailing Address State Name",
        "Business Mailing Address Postal Code", "Business Mailing Address Country Code (If outside U.S.)",
        "Business Mailing Address Telephone Number", "Business Mailing Address Fax Number",
    )]  # fmt: skip
    tax = [
        (
            col[f"Healthcare Provider Taxonomy Code_{n}"],
            col[f"Provider License Number_{n}"],
            col[f"Provider License Number State Code_{n}"],
            col[f"Healthcare Provider Primary Taxonomy Switch_{n}"],
        )
        for n in range(1, 16)
    ]
    with tmp.open("w", encoding="iso-8859-1", newline="") as out:
        out.write('"' + '","'.join(header) + '"\r\n')
        lines = []
        for number in range(rows):
            row = blank.copy()
            row[0] = make_npi(str(100_000_000 + number * 7 + rng.randrange(7)))
            kind = rng.random()
            if kind < 0.02:
                row[col["NPI Deactivation Date"]] = f"{rng.randrange(1, 13):02d}/15/20{rng.randrange(10, 25)}"
            else:
                state = states[_pick(cumulative, rng.random() * total)]
                individual = kind < 0.82
                row[col["Entity Type Code"]] = "1" if individual else "2"
                if individual:
                    row[col["Provider Last Name (Legal Name)"]] = rng.choice(LAST)
                    row[col["Provider First Name"]] = rng.choice(FIRST)
                    row[col["Provider Middle Name"]] = rng.choice("ABCDEJKLMR")
                    row[col["Provider Credential Text"]] = rng.choice(CREDENTIALS)
                    row[col["Provider Sex Code"]] = rng.choice("MF")
                    row[col["Is Sole Proprietor"]] = rng.choice("NNNY")
                    codes = rng.sample(TAXONOMIES, rng.choice((1, 1, 1, 2, 2, 3)))
                else:
                    row[col["Provider Organization Name (Legal Business Name)"]] = (
                        f"{rng.choice(CITIES)} {rng.choice(ORG_WORDS)} {rng.choice(ORG_WORDS)} LLC"
                    )
                    row[col["Employer Identification Number (EIN)"]] = "<UNAVAIL>"
                    row[col["Authorized Official Last Name"]] = rng.choice(LAST)
                    row[col["Authorized Official First Name"]] = rng.choice(FIRST)
                    row[col["Authorized Official Title or Position"]] = "OWNER"
                    row[col["Authorized Official Telephone Number"]] = f"614555{rng.randrange(10000):04d}"
                    row[col["Is Organization Subpart"]] = "N"
                    codes = rng.sample(ORG_TAXONOMIES, rng.choice((1, 1, 2)))
                zip5 = f"{rng.randrange(10000, 99999)}{rng.randrange(10000):04d}"
                phone = f"{rng.randrange(200, 999)}555{rng.randrange(10000):04d}"
                address = [
                    f"{rng.randrange(1, 9999)} {rng.choice(STREETS)}", rng.choice(("", "", "SUITE 100")),
                    rng.choice(CITIES), state, zip5, "US", phone, rng.choice(("", phone[:-1] + "9")),
                ]  # fmt: skip
                for index, value in zip(loc, address, strict=True):
                    row[index] = value
                for index, value in zip(mail, address, strict=True):
                    row[index] = value
                primary = rng.randrange(len(codes))
                for n, code in enumerate(codes):
                    code_at, license_at, license_state_at, switch_at = tax[n]
                    row[code_at] = code
                    row[license_at] = f"{state}{rng.randrange(100000, 999999)}" if individual else ""
                    row[license_state_at] = state if individual else ""
                    row[switch_at] = "Y" if n == primary else "N"
                row[col["Provider Enumeration Date"]] = (
                    f"{rng.randrange(1, 13):02d}/01/20{rng.randrange(5, 25):02d}"
                )
                row[col["Last Update Date"]] = f"{rng.randrange(1, 13):02d}/01/2024"
                row[col["Certification Date"]] = row[col["Last Update Date"]]
            lines.append('"' + '","'.join(row) + '"\r\n')
            if len(lines) == 20_000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))
    tmp.replace(path)


def _pick(cumulative: list[float], target: float) -> int:
    low, high = 0, len(cumulative) - 1
    while low < high:
        middle = (low + high) // 2
        if cumulative[middle] < target:
            low = middle + 1
        else:
            high = middle
    return low


def bench_file() -> Path:
    path = CACHE_DIR / f"npidata_bench_{ROWS}.csv"
    if not path.exists():
        started = time.perf_counter()
        print(f"writing {path} ({ROWS:,} rows) ...", flush=True)
        generate(path)
        print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    return path


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds, all threads: steadier than wall time on a shared machine
    peak_kib: int = 0
    output: str = ""


def duckdb_alone(path: Path, state: str) -> tuple[Run, int]:
    """Scan and filter with DuckDB's CSV reader, the same columns the import reads, rows to Python."""
    import duckdb

    from refloop.directory.nppes import NEEDED_COLUMNS

    header = real_header()
    columns = {name: "VARCHAR" for name in header}
    selected = ", ".join(f'"{name}"' for name in NEEDED_COLUMNS)
    state_column = "Provider Business Practice Location Address State Name"
    cpu_before, started = _cpu_self(), time.perf_counter()
    connection = duckdb.connect()
    # Only the module's own column names are formatted in; every value is a parameter.
    result = connection.execute(
        f"""SELECT {selected} FROM read_csv($path, columns=$columns, header=true, auto_detect=false,
            delim=',', quote='"', escape='"', encoding='latin-1', ignore_errors=true)
            WHERE "{state_column}" = $state""",  # noqa: S608
        {"path": str(path), "columns": columns, "state": state},
    )
    count = 0
    while batch := result.fetchmany(5000):
        count += len(batch)
    connection.close()
    return Run(wall=time.perf_counter() - started, cpu=_cpu_self() - cpu_before), count


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_measured(command: list[str], env: dict[str, str]) -> Run:
    """Run a child to completion, measured on its own with os.wait4 (time, CPU, peak RSS)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=PROJECT_DIR)  # noqa: S603
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(command[2:4])} failed: {err.read().decode().strip()}")
        cpu = usage.ru_utime + usage.ru_stime
        return Run(wall=elapsed, cpu=cpu, peak_kib=usage.ru_maxrss, output=out.read().decode())


def import_twice(path: Path, state: str) -> tuple[Run, Run]:
    """One import into a fresh migrated SQLite database, then the same import again (nothing changes)."""
    command = [sys.executable, "-m", "refloop.cli", "import-nppes", str(path), "--state", state]
    with tempfile.TemporaryDirectory(prefix="refloop-bench-") as data_dir:
        env = {**os.environ, "REFLOOP_DEBUG": "1", "REFLOOP_DATA_DIR": data_dir}
        env.pop("DATABASE_URL", None)
        run_measured([sys.executable, "-m", "refloop.cli", "migrate", "--verbosity", "0"], env)
        return run_measured(command, env), run_measured(command, env)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="refloop-bench-") as data_dir:
        os.environ["REFLOOP_DEBUG"] = "1"
        os.environ["REFLOOP_DATA_DIR"] = data_dir
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refloop.settings")
        os.environ.pop("DATABASE_URL", None)
        import django

        django.setup()
        path = bench_file()
        # Interleaved and repeated: the machine may be shared, so the best of each is the fair figure.
        alone, fresh, again = [], [], []
        for _ in range(REPEATS):
            run, matched = duckdb_alone(path, STATE)
            alone.append(run)
            first, second = import_twice(path, STATE)
            fresh.append(first)
            again.append(second)
    print(fresh[0].output.strip())
    print()
    size_mb = path.stat().st_size / 1e6
    print(
        f"file: {ROWS:,} rows, {size_mb:,.0f} MB; --state {STATE} matches {matched:,} rows; best of {REPEATS}"
    )
    print(f"{'scenario':<46} {'wall s':>7} {'CPU s':>7} {'rows/s':>9} {'peak MB':>8}")
    rows = [
        ("(a) DuckDB alone: scan + filter + fetch", alone),
        (f"(b) import-nppes --state {STATE}, fresh SQLite", fresh),
        ("(c) the same import again (nothing changes)", again),
    ]
    for label, runs in rows:
        wall, cpu = min(r.wall for r in runs), min(r.cpu for r in runs)
        peak = max(r.peak_kib for r in runs) / 1024
        peak_text = f"{peak:.0f}" if peak else ""
        print(f"{label:<46} {wall:>7.2f} {cpu:>7.2f} {ROWS / wall:>9,.0f} {peak_text:>8}")
    wall_ratio = min(r.wall for r in fresh) / min(r.wall for r in alone)
    cpu_ratio = min(r.cpu for r in fresh) / min(r.cpu for r in alone)
    peak_mb = max(r.peak_kib for r in [*fresh, *again]) / 1024
    print(f"(b)/(a): {wall_ratio:.2f} wall, {cpu_ratio:.2f} CPU (target <= 2.0: {_verdict(wall_ratio <= 2)})")
    print(f"peak memory of the import: {peak_mb:.0f} MB (target < 1024 MB: {_verdict(peak_mb < 1024)})")
    print("all runs, wall s: " + "; ".join(f"{label[:3]} {_runs(runs)}" for label, runs in rows))


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _runs(runs: list[Run]) -> str:
    return ", ".join(f"{run.wall:.2f}" for run in runs)
