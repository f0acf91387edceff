"""The `refloop` command: Django's management commands, with configuration errors told in one line.

`refloop migrate`, `refloop demo`, `refloop serve`, `refloop worker`, `refloop import-nppes ...`: a hyphen in
a command name is read as an underscore, so the documented names and Django's module names both work.
"""

from __future__ import annotations

import os
import sys

# Commands that do not need a reachable database before they start.
_NO_DATABASE = {"help", "version", "collectstatic", "makemigrations", "check", "diffsettings"}


def _database_problem() -> str | None:
    from django.conf import settings
    from django.db import DatabaseError, connection

    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        db = settings.DATABASES["default"]
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if os.environ.get("DATABASE_URL", "").strip():
            where = f"{db.get('HOST') or 'local socket'}:{db.get('PORT') or 'default port'}/{db.get('NAME')}"
            return f"DATABASE_URL: cannot connect to the database at {where}: {reason}"
        return f"REFLOOP_DATA_DIR: cannot open the SQLite database {db.get('NAME')}: {reason}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-"):
        args[0] = args[0].replace("-", "_")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refloop.settings")

    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        django.setup()
    except ImproperlyConfigured as exc:
        print(f"refloop: configuration error: {exc}", file=sys.stderr)
        return 2

    command = args[0] if args else "help"
    if command not in _NO_DATABASE and not command.startswith("-"):
        problem = _database_problem()
        if problem:
            print(f"refloop: {problem}", file=sys.stderr)
            return 2

    from django.core.management import execute_from_command_line

    execute_from_command_line(["refloop", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
