from __future__ import annotations

import os
import sys

from django.core.management import BaseCommand, CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

# The access log records the path, never the query string: search terms can be patient names.
ACCESS_LOG_FORMAT = '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


class Command(BaseCommand):
    help = "Serve refloop with gunicorn (static files by whitenoise). Not for development reloads."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("REFLOOP_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("REFLOOP_PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("REFLOOP_WEB_WORKERS", "3")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("REFLOOP_WEB_THREADS", "4")))

    def handle(self, *args, host: str, port: int, workers: int, threads: int, **options):
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            raise CommandError(
                f"{len(pending)} database migrations are not applied: run `refloop migrate` first."
            )
        call_command("collectstatic", interactive=False, verbosity=0)
        connection.close()
        self.stdout.write(f"refloop is serving on http://{host}:{port}/  (Ctrl-C stops it)")
        self.stdout.flush()
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "refloop.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--access-logfile",
            "-",
            "--access-logformat",
            ACCESS_LOG_FORMAT,
            "--graceful-timeout",
            "20",
            "--timeout",
            "60",
            # The master imports the application and warms it (every view, every template) once, then forks the
            # workers: they start in a fraction of the time, and their first requests are not slower than the rest.
            "--preload",
            # gunicorn 24+ also listens on a control socket in ~/.gunicorn (worker counts changed at run time):
            # nothing refloop uses, and not an opening a hospital server should have by default.
            "--no-control-socket",
        ]
        os.environ["REFLOOP_WARM"] = "1"
        os.environ["REFLOOP_STATIC_FINDERS"] = "0"  # collected just above: serve them, compressed copies included
        os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with gunicorn, fixed arguments
