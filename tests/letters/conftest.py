"""Real gateways on loopback for the letters tests: an SMTP server (aiosmtpd), a TCP port that accepts and never
answers, an HTTP fax gateway; and the worker run in-process or as its own process against the test database."""

from __future__ import annotations

import asyncio
import email
import importlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def ensure_letter_defaults() -> None:
    """The default templates and rules of the data migration: a transactional test's flush removes them."""
    from django.apps import apps

    migration = importlib.import_module("refloop.letters.migrations.0002_default_templates_and_rules")
    migration.create_defaults(apps, None)


@pytest.fixture(autouse=True)
def letter_defaults(db):
    ensure_letter_defaults()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Inbox:
    """What the SMTP server received, and how it behaves: refuse with a reply, or stall at a step."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    refuse_rcpt: str = ""
    stall_at: str = ""  # "rcpt" (before DATA) or "data" (after the message is in, before the reply)
    stalled: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def _stall(self, step: str) -> None:
        if self.stall_at == step:
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt:
            return self.refuse_rcpt
        await self._stall("rcpt")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        await self._stall("data")
        return "250 2.0.0 Ok: queued as TEST"


@pytest.fixture
def smtp(settings):
    """An SMTP server on a free loopback port; the settings point outgoing mail at it."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.DEFAULT_FROM_EMAIL = "letters@riverside-ortho.example"
    settings.LETTERS_RETRY_SECONDS = [0, 0]
    settings.PUBLIC_URL = "https://refloop.riverside-ortho.example"
    inbox.port = port
    yield inbox
    inbox.release.set()
    controller.stop()


@pytest.fixture
def silent_port():
    """A port that accepts connections and never says a word: an SMTP gateway that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


@dataclass
class FaxGateway:
    url: str
    received: list[dict] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def fax_gateway(settings):
    """An HTTP fax gateway that dedupes by Idempotency-Key and answers {"id", "status": "delivered"}."""
    gateway = FaxGateway(url="")
    seen: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            key = self.headers.get("Idempotency-Key", "")
            if gateway.status != 200:
                self.send_response(gateway.status)
                self.end_headers()
                self.wfile.write(b"busy")
                return
            if key not in seen:
                seen[key] = f"fx-{len(seen) + 1}"
                gateway.received.append({"key": key, "body": body, "auth": self.headers.get("Authorization", "")})
            answer = json.dumps({"id": seen[key], "status": "delivered"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}/send"
    settings.LETTERS_FAX_GATEWAY = gateway.url
    settings.LETTERS_FAX_GATEWAY_TOKEN = "fax-token"
    settings.LETTERS_RETRY_SECONDS = [0, 0]
    yield gateway
    server.shutdown()
    server.server_close()


def run_worker() -> None:
    """`refloop worker --batch`, in this process: every ready task, then return."""
    call_command("worker", batch=True, interval=0, verbosity=0)


@contextmanager
def database_for_other_process(tmp_path):
    """A DATABASE_URL another process can open holding exactly the test database.

    PostgreSQL: the test database itself (the test must be transactional). SQLite's test database lives in
    this process's memory, so it is copied to a file for the other process and copied back afterwards.
    """
    connection.ensure_connection()
    if connection.vendor == "sqlite":
        path = tmp_path / "shared.sqlite3"
        target = sqlite3.connect(path)
        connection.connection.backup(target)
        target.close()
        try:
            yield f"sqlite:///{path}"
        finally:
            source = sqlite3.connect(path)
            source.backup(connection.connection)
            source.close()
        return
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    yield f"postgres://{credentials}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def worker_process(database_url: str, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({"DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}, **extra_env)
    return subprocess.Popen(
        [sys.executable, "-m", "refloop.cli", "worker", "--batch", "--interval", "0.2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
