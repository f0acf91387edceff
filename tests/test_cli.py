"""The `refloop` command as an operator meets it: bad configuration stops it with one line, no traceback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def run_refloop(*args: str, env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REFLOOP_", "DATABASE_URL", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "-m", "refloop.cli", *args],
        env={**base, **env},
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
