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
