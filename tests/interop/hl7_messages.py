"""Helpers for the HL7 v2 tests: the reference messages as bytes, edited copies of them, ACKs read back."""

from __future__ import annotations

from pathlib import Path

HAPI_REF = "hl7v2/hapi_REF_I12_v25.hl7"
ONC_OMG = "hl7v2/onc360x_OMG_O19_referral_request.hl7"
REFERRAL_MESSAGES = [HAPI_REF, ONC_OMG]  # every artefact in shared/reference/hl7v2 that describes a referral


def reference_text(reference_dir: Path, name: str) -> str:
    with open(reference_dir / name, newline="") as handle:  # segments end with CR: no newline translation
        return handle.read()


def segments(text: str) -> list[str]:
    return [s for s in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if s]


def join(parts: list[str]) -> str:
    return "\r".join(parts) + "\r"


def set_field(text: str, segment_id: str, number: int, value: str, occurrence: int = 1) -> str:
    """A copy of the message with field `number` of a segment replaced (MSH numbering counts MSH-1)."""
    out, seen = [], 0
    for seg in segments(text):
        if seg.startswith(segment_id):
            seen += 1
            if seen == occurrence:
                parts = seg.split("|")
                index = number - 1 if segment_id == "MSH" else number
                parts += [""] * (index + 1 - len(parts))
                parts[index] = value
                seg = "|".join(parts)
        out.append(seg)
    return join(out)


def field_of(text: str, segment_id: str, number: int) -> str:
    for seg in segments(text):
        if seg.startswith(segment_id):
            parts = seg.split("|")
            index = number - 1 if segment_id == "MSH" else number
            return parts[index] if index < len(parts) else ""
    return ""


def drop(text: str, segment_id: str, where=lambda seg: True) -> str:
    return join([s for s in segments(text) if not (s.startswith(segment_id) and where(s))])


def add(text: str, *new: str) -> str:
    return join(segments(text) + list(new))


def ack_fields(ack: str) -> dict[str, list[str]]:
    """{segment id: fields} of an ACK (one of each), MSH numbered like the standard (fields[1] = MSH-1)."""
    found = {}
    for seg in segments(ack):
        parts = [_unescape(p) for p in seg.split("|")]
        found[parts[0]] = ["MSH", "|", *parts[1:]] if parts[0] == "MSH" else parts
    return found


def _unescape(value: str) -> str:
    if value == "^~\\&":
        return value
    for name, char in (("S", "^"), ("F", "|"), ("T", "&"), ("R", "~"), ("E", "\\")):
        value = value.replace(f"\\{name}\\", char)
    return value


class Destination:
    """An interface engine on loopback for outbound tests: keeps what it receives, answers as told, and (as HL7
    asks of a receiver) answers a repeated MSH-10 with its first ACK instead of taking the message twice."""

    def __init__(self) -> None:
        import socketserver
        import threading

        from refloop.interop.hl7.mllp import FrameReader, frame

        self.received: list[str] = []  # every frame, resends included
        self.taken: dict[str, str] = {}  # MSH-10 -> the message, once
        self.answer = "AA"  # or "AE", "AR", "silent" (read and never answer), "close"
        self.got_one = threading.Event()
        self.release = threading.Event()
        destination = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                reader = FrameReader(self.request, 10_000_000)
                while True:
                    try:
                        payload = reader.next()
                    except OSError:
                        return
                    if payload is None:
                        return
                    text = payload.decode()
                    destination.received.append(text)
                    destination.got_one.set()
                    control_id = segments(text)[0].split("|")[9]
                    mode = destination.answer
                    if mode == "silent":
                        destination.release.wait(60)
                        return
                    if mode == "close":
                        return
                    if mode == "AA":
                        destination.taken.setdefault(control_id, text)
                    err = "\rERR||PID^1^7|102^Data type error^HL70357|E||||bad birth date" if mode == "AE" else ""
                    ack = f"MSH|^~\\&|ENGINE||REFLOOP||20260101000000||ACK|A{len(destination.received)}|P|2.5.1\r"
                    ack += f"MSA|{mode}|{control_id}{err}\r"
                    self.request.sendall(frame(ack.encode()))

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
