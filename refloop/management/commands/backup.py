"""`refloop backup PATH`: a consistent copy of the database taken while refloop keeps running.

SQLite: the SQLite online backup API (pages copied under a read lock, so the copy is one moment of the
database even while the web server writes). PostgreSQL: pg_dump in its custom format (one snapshot).
The file holds PHI: it is written with owner-only permissions and appears at PATH only when complete.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from django.core.management import BaseCommand, CommandError
from django.db import connection

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


def pg_env(settings_dict: dict) -> tuple[list[str], dict[str, str]]:
    """libpq connection arguments and environment for pg_dump/pg_restore from Django's database settings."""
    args = ["--dbname", settings_dict["NAME"]]
    if settings_dict.get("HOST"):
        args += ["--host", str(settings_dict["HOST"])]
    if settings_dict.get("PORT"):
        args += ["--port", str(settings_dict["PORT"])]
    if settings_dict.get("USER"):
        args += ["--username", str(settings_dict["USER"])]
    env = {**os.environ}
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings_dict["PASSWORD"])
    env["PGCONNECT_TIMEOUT"] = str(settings_dict.get("OPTIONS", {}).get("connect_timeout", 10))
    return args, env


def pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise CommandError(f"{name} is not installed: install the PostgreSQL client tools (e.g. postgresql-client)")
    return path


def run_tool(argv: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise CommandError(f"{what} failed: {reason[-1] if reason else f'exit {result.returncode}'}")


def _sqlite_backup(target: Path) -> None:
    connection.ensure_connection()
    source = connection.connection  # Django's own sqlite3 connection: works for a file or an in-memory database
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        problems = copy.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        copy.close()
    if problems != "ok":
        raise CommandError(f"the backup copy fails SQLite's integrity check: {problems}")


def _postgres_backup(target: Path) -> None:
    args, env = pg_env(connection.settings_dict)
    run_tool([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target), *args], env, "pg_dump")


class Command(BaseCommand):
    help = "Write a consistent backup of the database to PATH while refloop runs (SQLite file or pg_dump archive)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the file to write (an existing file is replaced only when the copy is done)")

    def handle(self, *args, path: str, **options):
        target = Path(path).expanduser().resolve()
        if target.is_dir():
            raise CommandError(f"{target} is a directory: give a file name, e.g. {target / 'refloop.backup'}")
        if not target.parent.is_dir():
            raise CommandError(f"the folder {target.parent} does not exist")
        handle, partial = tempfile.mkstemp(prefix=".refloop-backup-", dir=target.parent)
        os.close(handle)
        partial_path = Path(partial)
        try:
            os.chmod(partial_path, 0o600)
            if connection.vendor == "sqlite":
                _sqlite_backup(partial_path)  # an empty file is an empty SQLite database to copy into
            elif connection.vendor == "postgresql":
                _postgres_backup(partial_path)
            else:
                raise CommandError(f"backups of a {connection.vendor} database are not supported")
            os.replace(partial_path, target)
        finally:
            partial_path.unlink(missing_ok=True)
        size = target.stat().st_size
        kind = "SQLite database" if connection.vendor == "sqlite" else "pg_dump custom archive"
        self.stdout.write(f"Backed up the database to {target} ({kind}, {size:,} bytes).")
        self.stdout.write(
            "  It holds patient data: keep it encrypted and off this machine. Files under "
            "REFLOOP_DATA_DIR/media (attachments, letters) are backed up separately."
        )
