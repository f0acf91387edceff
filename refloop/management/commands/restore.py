"""`refloop restore PATH`: put back a database written by `refloop backup`, replacing the current one.

Stop the web server and the worker first. The restore is all or nothing: SQLite copies the backup in with
the online backup API (one write transaction), PostgreSQL runs pg_restore --clean in a single transaction.
Afterwards the audit trail's hash chain is checked and the result printed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from django.core.management import BaseCommand, CommandError, call_command
from django.db import connection, connections

from refloop.management.commands.backup import PGDUMP_MAGIC, SQLITE_MAGIC, pg_env, pg_tool, run_tool


def _kind(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise CommandError(f"{path} is not a refloop backup (neither a SQLite database nor a pg_dump custom archive)")


def _sqlite_restore(path: Path) -> None:
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problems = source.execute("PRAGMA integrity_check").fetchone()[0]
        if problems != "ok":
            raise CommandError(f"the backup fails SQLite's integrity check, nothing was restored: {problems}")
        if not source.execute("SELECT 1 FROM sqlite_master WHERE name = 'django_migrations'").fetchone():
            raise CommandError(f"{path} is a SQLite database but not a refloop one; nothing was restored")
        connection.ensure_connection()
        source.backup(connection.connection)
    finally:
        source.close()


def _postgres_restore(path: Path) -> None:
    connections.close_all()  # pg_restore --clean drops tables: nothing of ours may hold them open
    args, env = pg_env(connection.settings_dict)
    argv = [pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction", "--exit-on-error"]
    run_tool([*argv, *args, str(path)], env, "pg_restore (nothing was changed)")


class Command(BaseCommand):
    help = "Replace the database with a backup made by `refloop backup` (stop the server and worker first)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="a file written by `refloop backup`")
        parser.add_argument("--yes", action="store_true", help="do not ask: the current data is replaced")

    def handle(self, *args, path: str, yes: bool, **options):
        source = Path(path).expanduser().resolve()
        if not source.is_file():
            raise CommandError(f"no backup file at {source}")
        kind = _kind(source)
        if kind != connection.vendor:
            raise CommandError(
                f"{source} is a {kind} backup but this refloop uses {connection.vendor}: restore it into a "
                f"{kind} database (for a move between the two, use `refloop dumpdata`/`loaddata`)"
            )
        if not yes:
            answer = input(f"Replace ALL data in the current database with {source}? Type 'yes': ")
            if answer.strip().lower() != "yes":
                raise CommandError("restore cancelled; nothing was changed")
        if kind == "sqlite":
            _sqlite_restore(source)
        else:
            _postgres_restore(source)
        self.stdout.write(f"Restored the database from {source}.")
        call_command("migrate", interactive=False, verbosity=0)  # a backup from an older release catches up
        try:
            call_command("audit", "verify", stdout=self.stdout)
        except CommandError as exc:
            self.stderr.write(f"  Warning: {exc}")
