"""The `refloop` command as an operator meets it: bad configuration stops it with one line, no traceback."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.letters.conftest import database_for_other_process, free_port


def _clean_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without refloop's and Django's settings, plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REFLOOP_", "DATABASE_URL", "DJANGO_"))}
    return {**base, **env}


def run_refloop(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "refloop.cli", *args],
        env=_clean_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
    )


def assert_one_line_naming(result: subprocess.CompletedProcess, setting: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "Traceback" not in result.stderr


def test_a_bad_debug_value_stops_with_one_line(tmp_path):
    result = run_refloop("check", env={"REFLOOP_DEBUG": "perhaps", "REFLOOP_DATA_DIR": str(tmp_path)})
    assert_one_line_naming(result, "REFLOOP_DEBUG")


def test_production_mode_without_a_secret_key_stops_with_one_line(tmp_path):
    result = run_refloop("check", env={"REFLOOP_DATA_DIR": str(tmp_path)})
    assert_one_line_naming(result, "REFLOOP_SECRET_KEY")


def test_an_unreachable_database_stops_with_one_line(tmp_path):
    result = run_refloop(
        "migrate",
        env={
            "REFLOOP_SECRET_KEY": "k" * 50,
            "REFLOOP_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://postgres:hunter2@127.0.0.1:9/refloop",
        },
    )
    assert_one_line_naming(result, "DATABASE_URL")
    assert "hunter2" not in result.stderr


def test_a_malformed_database_url_stops_with_one_line(tmp_path):
    result = run_refloop(
        "migrate",
        env={
            "REFLOOP_SECRET_KEY": "k" * 50,
            "REFLOOP_DATA_DIR": str(tmp_path),
            "DATABASE_URL": "mysql://x@y/z",
        },
    )
    assert_one_line_naming(result, "DATABASE_URL")


def test_it_migrates_sqlite_in_the_data_dir_in_wal_mode(tmp_path):
    result = run_refloop("migrate", env={"REFLOOP_SECRET_KEY": "k" * 50, "REFLOOP_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    database = tmp_path / "refloop.sqlite3"
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"accounts_user", "practice_clinician", "directory_territory"} <= tables


def test_hyphenated_command_names_reach_the_django_command(tmp_path):
    result = run_refloop("help", "--commands", env={"REFLOOP_DEBUG": "1", "REFLOOP_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0
    assert {"serve", "worker", "demo", "generate"} <= set(result.stdout.split())


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL leg only"
)
def test_it_connects_to_postgresql_from_database_url(tmp_path):
    result = run_refloop(
        "showmigrations",
        "accounts",
        env={
            "REFLOOP_SECRET_KEY": "k" * 50,
            "REFLOOP_DATA_DIR": str(tmp_path),
            "DATABASE_URL": os.environ["DATABASE_URL"],
        },
    )
    assert result.returncode == 0, result.stderr
    assert "accounts" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_serve_answers_pages_and_static_files_from_preloaded_warm_workers(tmp_path):
    """`refloop serve` as an operator starts it, on this leg's database: migrations checked, static files collected
    and compressed (the first time, about half a minute), gunicorn's master warms the application once (and closes
    its database connection) and forks the workers."""
    port = free_port()
    log = tmp_path / "serve.log"
    with database_for_other_process(tmp_path) as url, log.open("wb") as out:
        home = tmp_path / "home"
        home.mkdir()
        env = {"DATABASE_URL": url, "REFLOOP_SECRET_KEY": "k" * 50, "REFLOOP_DATA_DIR": str(tmp_path),
               "REFLOOP_SECURE_COOKIES": "0", "HOME": str(home)}  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "refloop.cli", "serve", "--port", str(port), "--workers", "2", "--threads", "1"],
            env=_clean_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=10) as page:  # noqa: S310
                        assert page.status == 200
                        assert b'name="password"' in page.read()
                    break
                except OSError:
                    assert server.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/refloop/app.css", timeout=10) as css:  # noqa: S310
                assert css.status == 200
                assert b"{" in css.read()
            # The collected files are served with their compressed copies (plotly.js: 4.8 MB as it is, 1 MB as brotli).
            plotly = urllib.request.Request(
                f"http://127.0.0.1:{port}/static/plotly/plotly.min.js", headers={"Accept-Encoding": "gzip, br"}
            )
            with urllib.request.urlopen(plotly, timeout=10) as script:  # noqa: S310
                assert script.headers["Content-Encoding"] == "br"
                assert len(script.read()) < 2_000_000
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    output = log.read_text()
    assert "did not compile" not in output  # every refloop template compiled in the master before the fork
    assert "Traceback" not in output
    assert output.count("Booting worker") == 2
    assert list(home.iterdir()) == []  # no control socket (~/.gunicorn) or anything else left in the user's home
