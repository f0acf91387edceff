"""`refloop hl7 listen --port N` (the MLLP listener) and `refloop hl7 ingest FILE...` (messages from files).

ingest prints the ACK of each message (segments on their own lines) and exits with status 1 when any message
was not accepted, so a script can stop on the first bad file. It makes each referral before going on to the
next message (the listener leaves that to the worker), so a message answered AA whose referral then failed
is reported (and counted as not accepted) too. `refloop hl7 requeue-failed` queues the inbound messages whose
referral failed for the worker again, once the cause is fixed. `refloop hl7 send-queued` sends the status
messages written while no destination was configured (REFLOOP_HL7_DESTINATION).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.core.management import BaseCommand, CommandError


class Command(BaseCommand):
    help = "HL7 v2: run the MLLP listener, ingest message files, or send queued status messages."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{listen,ingest,send-queued,requeue-failed}")
        listen = sub.add_parser("listen", help="accept referrals over MLLP (TCP)")
        listen.add_argument("--port", type=int, required=True)
        listen.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
        listen.add_argument(
            "--processes",
            type=int,
            default=1,
            help="listener processes sharing the port (connections are spread over them; use with PostgreSQL)",
        )
        listen.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
        ingest = sub.add_parser("ingest", help="read HL7 messages from files and print each ACK")
        ingest.add_argument("files", nargs="+", metavar="FILE")
        sub.add_parser("send-queued", help="queue for sending every status message not yet sent")
        sub.add_parser("requeue-failed", help="queue again the inbound messages whose referral could not be made")

    def handle(self, *args, action: str, **options):
        if action == "listen":
            if options["processes"] > 1:
                return self._listen_many(options["host"], options["port"], options["processes"])
            return self._listen(options["host"], options["port"], reuse_port=options["reuse_port"])
        if action == "ingest":
            return self._ingest(options["files"])
        if action == "requeue-failed":
            from refloop.interop.hl7.inbound import inbound_requeue_failed

            self.stdout.write(f"{inbound_requeue_failed()} inbound message(s) queued again for the worker")
            return None
        return self._send_queued()

    def _listen_many(self, host: str, port: int, processes: int) -> None:
        """Start `processes` listeners on one port (SO_REUSEPORT), each with its own interpreter and database
        connections, and stop them all on SIGTERM or Ctrl-C."""
        if not 0 < port < 65536:
            raise CommandError(f"--port must be between 1 and 65535; got {port}")
        command = [sys.executable, "-m", "refloop.cli", "hl7", "listen", "--host", host, "--port", str(port)]
        children = [subprocess.Popen([*command, "--reuse-port"]) for _ in range(processes)]  # noqa: S603 - no shell

        def stop(signum, frame):
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        try:
            for child in children:
                child.wait()
        except KeyboardInterrupt:
            stop(None, None)
            for child in children:
                child.wait()
        failed = [c.returncode for c in children if c.returncode not in (0, -signal.SIGTERM)]
        if failed:
            raise CommandError(f"{len(failed)} listener process(es) ended with an error")

    def _listen(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        from refloop.interop.hl7.mllp import MllpServer

        if not 0 < port < 65536:
            raise CommandError(f"--port must be between 1 and 65535; got {port}")
        try:
            server = MllpServer(host, port, reuse_port=reuse_port)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

        def stop(signum, frame):
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(f"HL7 MLLP listener on {host}:{server.port}", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        self.stdout.write("HL7 MLLP listener stopped")

    def _ingest(self, files: list[str]) -> None:
        from refloop.interop.hl7.inbound import Status, hl7_message_receive
        from refloop.interop.hl7.parse import split_messages

        refused = 0
        total = 0
        for name in files:
            path = Path(name)
            try:
                raw = path.read_bytes()  # bytes: the CR segment ends and MSH-18's character set stay as sent
            except OSError as exc:
                raise CommandError(f"{name}: {exc.strerror or exc}") from None
            messages = split_messages(raw)
            if not messages:
                self.stderr.write(f"{name}: no HL7 message in the file")
                refused += 1
                continue
            for number, message in enumerate(messages, start=1):
                total += 1
                answer = hl7_message_receive(raw=message, via=f"file {path.name}")
                label = f"{name}" + (f" message {number}" if len(messages) > 1 else "")
                self.stdout.write(
                    f"# {label}: {answer.code}" + (" (resent: the first answer)" if answer.duplicate else "")
                )
                self.stdout.write(answer.ack.replace("\r", "\n").rstrip("\n"))
                if answer.message is not None and answer.message.status == Status.FAILED:
                    self.stdout.write(f"# {label}: {answer.message.detail}")
                    refused += 1
                elif not answer.accepted:
                    refused += 1
        if refused:
            raise CommandError(f"{refused} of {total} message(s) not accepted", returncode=1)

    def _send_queued(self) -> None:
        from refloop.interop.hl7.sending import outbound_requeue

        if not settings.HL7_DESTINATION:
            raise CommandError("REFLOOP_HL7_DESTINATION is not set: there is nowhere to send to")
        count = outbound_requeue()
        self.stdout.write(f"{count} status message(s) queued for {settings.HL7_DESTINATION}")
