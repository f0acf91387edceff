"""MLLP (the Minimal Lower Layer Protocol of HL7 v2): <VT> message <FS><CR> over TCP, both ways.

The listener (`refloop hl7 listen --port N`) answers every framed message with its ACK on the same connection,
in order; a connection is served by its own thread with its own database connection, so several senders can
be connected at once. The ACK comes once the message is validated and committed to the inbound queue
(inbound.hl7_message_accept); the worker makes the referrals (inbound.inbound_drain), and the listener
makes sure a drain is queued for it. Bytes outside a frame are ignored (some engines send keep-alive newlines);
a frame larger than REFLOOP_HL7_MAX_MESSAGE_BYTES closes the connection, since the sender cannot be answered
mid-frame.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time

from django.conf import settings
from django.db import connections

from refloop.interop.hl7.parse import charset_of
from refloop.interop.hl7.problems import Problem

log = logging.getLogger(__name__)
START, END, CR = b"\x0b", b"\x1c", b"\x0d"
IDLE_SECONDS = 600


class FrameTooLarge(Exception):
    pass


def frame(payload: bytes) -> bytes:
    return START + payload + END + CR


class FrameReader:
    """Reads MLLP frames from a socket, one at a time."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self.sock = sock
        self.limit = limit
        self.buffer = bytearray()

    def next(self) -> bytes | None:
        """The next frame's payload, or None when the peer closed the connection."""
        while True:
            start = self.buffer.find(START)
            if start == -1:
                self.buffer.clear()
            else:
                end = self.buffer.find(END, start + 1)
                if end != -1:
                    payload = bytes(self.buffer[start + 1 : end])
                    rest = end + 1
                    if rest < len(self.buffer) and self.buffer[rest : rest + 1] == CR:
                        rest += 1
                    del self.buffer[:rest]
                    return payload
                if start > 0:
                    del self.buffer[:start]
                if len(self.buffer) > self.limit:
                    raise FrameTooLarge(f"a frame passed {self.limit} bytes without its end")
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk


def encode_answer(ack: str, raw: bytes) -> bytes:
    """The ACK in the character set the message came in (MSH-18 is echoed in it)."""
    try:
        _, codec = charset_of(raw)
    except Problem:
        codec = "utf-8"
    return ack.encode(codec, errors="replace")


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        from refloop.interop.hl7.inbound import Status, hl7_message_accept, internal_error_ack

        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        self.request.settimeout(IDLE_SECONDS)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = FrameReader(self.request, settings.HL7_MAX_MESSAGE_BYTES)
        try:
            while True:
                raw = reader.next()
                if raw is None:
                    return
                # The thread keeps its database connection for the whole MLLP connection (closing it after each
                # message, as close_old_connections does on SQLite, cost a connect and its PRAGMAs: 2 ms of CPU
                # a message); after an error it is closed, and the next message connects afresh.
                try:
                    answer = hl7_message_accept(raw=raw, via=f"MLLP from {peer}")
                except Exception:  # the database went away...: the sender is told to try again later
                    log.exception("MLLP message from %s could not be recorded", peer)
                    connections.close_all()
                    self.request.sendall(frame(encode_answer(internal_error_ack(raw), raw)))
                    continue
                self.request.sendall(frame(encode_answer(answer.ack, raw)))
                if answer.message is not None and answer.message.status == Status.QUEUED:
                    self.server.kicker.poke()
                log.info(
                    "HL7 %s from %s: %s%s",
                    answer.message.message_type if answer.message else "message",
                    peer,
                    answer.code,
                    " (resent)" if answer.duplicate else "",
                )
        except FrameTooLarge as exc:
            log.warning("MLLP connection from %s closed: %s", peer, exc)
        except (TimeoutError, ConnectionError) as exc:
            log.info("MLLP connection from %s ended: %s", peer, type(exc).__name__)
        finally:
            connections.close_all()  # this thread's connections only


class MllpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        from refloop.interop.hl7.inbound import Kicker

        # reuse_port: several listener processes share the port, and the kernel spreads connections over them
        self.allow_reuse_port = reuse_port
        super().__init__((host, port), _Handler)
        self.kicker = Kicker()  # queues the worker's drain after messages were queued

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def server_close(self) -> None:
        super().server_close()
        self.kicker.stop()


class MllpClient:
    """One connection to an MLLP peer; `send` waits for the answer frame."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = FrameReader(self.sock, 50_000_000)

    def send(self, payload: bytes) -> bytes:
        self.sock.sendall(frame(payload))
        answer = self.reader.next()
        if answer is None:
            raise ConnectionError("the peer closed the connection without answering")
        return answer

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> MllpClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def split_destination(destination: str) -> tuple[str, int]:
    host, _, port = destination.rpartition(":")
    return host.strip("[]"), int(port)


def wait_for_port(host: str, port: int, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
