"""HL7 v2 messages from bytes: the character set of MSH-18, segments, repetitions, components, escapes.

A small reader of our own rather than a library's object tree: refloop reads a handful of fields from two
message types, and needs every problem located exactly (segment, occurrence, field, component) for the ERR
segment of the ACK. Values are split on the raw separators first and unescaped last, so an escaped
separator (\\F\\, \\S\\, \\T\\, \\R\\) inside a value never splits it.

Segments end with a carriage return (the standard); a file edited on another system may end them with CR LF
or LF, which is accepted too.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.utils import timezone

from refloop.interop.hl7.problems import DATA_TYPE, TABLE_VALUE, UNSUPPORTED_MESSAGE, Problem

# HL7 table 0211 (alternate character sets) -> Python codecs. An absent MSH-18 is read as UTF-8 (of which
# ASCII, the standard's default, is a subset), falling back to ISO 8859-1 for the senders that never say.
CHARSETS = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "iso8859-1",
    "ISO IR100": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "ISO IR192": "utf-8",
    "UNICODE": "utf-8",
    "WINDOWS-1252": "cp1252",
}
SEGMENT_END = re.compile(r"\r\n|\r|\n")
SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_ESCAPE_HEX = re.compile(r"^X([0-9A-Fa-f]{2})+$")


def charset_of(raw: bytes) -> tuple[str, str]:
    """(MSH-18 as sent, Python codec) read from the header before the whole message is decoded."""
    head = raw.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("iso8859-1")
    if not head.startswith("MSH") or len(head) < 8:
        return "", "utf-8"
    parts = head.split(head[3])
    # parts[0] is "MSH" and parts[n - 1] is MSH-n (MSH-1 is the separator itself)
    declared = parts[17].split(head[4] if len(head) > 4 else "^")[0].strip() if len(parts) > 17 else ""
    if not declared:
        return "", "utf-8"
    codec = CHARSETS.get(declared.upper())
    if codec is None:
        raise Problem(
            f"character set {declared!r} is not one refloop reads (use UNICODE UTF-8, 8859/1 or ASCII)",
            segment="MSH",
            field=18,
            code=TABLE_VALUE,
            ack_code="AR",
        )
    return declared, codec


def decode(raw: bytes) -> tuple[str, str]:
    """The message as text, and the codec it was read with (to answer in the same one)."""
    declared, codec = charset_of(raw)
    try:
        return raw.decode(codec), codec
    except UnicodeDecodeError as exc:
        if not declared:
            return raw.decode("iso8859-1"), "iso8859-1"
        raise Problem(
            f"the message is not valid {declared}: byte 0x{raw[exc.start]:02X} at offset {exc.start}",
            segment="MSH",
            field=18,
            code=DATA_TYPE,
            ack_code="AR",
        ) from None


@dataclass(frozen=True)
class Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def msh2(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent


@dataclass
class Segment:
    id: str
    fields: list[str]  # fields[n] is field n (for MSH, fields[1] is the field separator itself)
    occurrence: int  # 1 for the first segment with this id, 2 for the second...


@dataclass
class Message:
    segments: list[Segment]
    encoding: Encoding
    text: str
    codec: str = "utf-8"
    _by_id: dict[str, list[Segment]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for segment in self.segments:
            self._by_id.setdefault(segment.id, []).append(segment)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def all(self, segment_id: str) -> list[Segment]:
        return self._by_id.get(segment_id, [])

    def first(self, segment_id: str) -> Segment | None:
        found = self._by_id.get(segment_id)
        return found[0] if found else None

    # Values -------------------------------------------------------------------------------------------------
    def raw(self, segment: Segment | None, number: int) -> str:
        if segment is None or number >= len(segment.fields):
            return ""
        value = segment.fields[number]
        return "" if value == '""' else value  # "" is HL7's explicit null

    def repetitions(self, segment: Segment | None, number: int) -> list[str]:
        raw = self.raw(segment, number)
        if segment is not None and segment.id == "MSH" and number == 2:
            return [raw]
        return [rep for rep in raw.split(self.encoding.repetition)] if raw else []

    def components(self, repetition: str) -> list[str]:
        """Each component of one repetition, subcomponents kept raw (split them with `subcomponents`)."""
        return repetition.split(self.encoding.component) if repetition else []

    def subcomponents(self, component: str) -> list[str]:
        return [self.unescape(part) for part in component.split(self.encoding.subcomponent)]

    def value(self, segment: Segment | None, number: int, component: int = 1, subcomponent: int = 1) -> str:
        """One leaf of the first repetition, unescaped and stripped."""
        reps = self.repetitions(segment, number)
        return self.part(reps[0], component, subcomponent) if reps else ""

    def part(self, repetition: str, component: int = 1, subcomponent: int = 1) -> str:
        comps = self.components(repetition)
        if component > len(comps):
            return ""
        subs = comps[component - 1].split(self.encoding.subcomponent)
        if subcomponent > len(subs):
            return ""
        return self.unescape(subs[subcomponent - 1]).strip()

    def text_of(self, repetition: str) -> str:
        """A whole repetition as text (a free-text field such as NTE-3): its components joined by spaces."""
        return " ".join(p for p in (self.unescape(c).strip() for c in self.components(repetition)) if p)

    def unescape(self, value: str) -> str:
        esc = self.encoding.escape
        if not esc or esc not in value:
            return value
        out: list[str] = []
        i = 0
        while i < len(value):
            char = value[i]
            if char != esc:
                out.append(char)
                i += 1
                continue
            end = value.find(esc, i + 1)
            if end == -1:
                out.append(value[i:])
                break
            out.append(self._escape(value[i + 1 : end], value[i : end + 1]))
            i = end + 1
        return "".join(out)

    def _escape(self, name: str, literal: str) -> str:
        enc = self.encoding
        simple = {"F": enc.field, "S": enc.component, "T": enc.subcomponent, "R": enc.repetition, "E": enc.escape}
        if name in simple:
            return simple[name]
        if name == ".br":
            return "\n"
        if name in ("H", "N") or name.startswith((".sp", ".in", ".ti", ".sk", ".ce", ".fi", ".nf", "C", "M", "Z")):
            return ""  # highlighting, formatting and character-set switches: no meaning in plain text
        if _ESCAPE_HEX.match(name):
            try:
                return bytes.fromhex(name[1:]).decode(self.codec)
            except (UnicodeDecodeError, LookupError):
                return bytes.fromhex(name[1:]).decode("iso8859-1")
        return literal


def parse(raw: bytes | str) -> Message:
    """Bytes (or text) of one message -> Message; a Problem (answered AR) when it is not an HL7 message."""
    if isinstance(raw, bytes):
        text, codec = decode(raw.lstrip(b"\xef\xbb\xbf"))
    else:
        text, codec = raw, "utf-8"
    text = text.strip("\r\n\t \x00")
    if not text.startswith("MSH") or len(text) < 8:
        raise Problem("the message does not start with an MSH segment", segment="MSH", code="100", ack_code="AR")
    sep = text[3]
    lines = [line for line in SEGMENT_END.split(text) if line.strip()]
    msh2 = lines[0].split(sep)[1] if len(lines[0].split(sep)) > 1 else ""
    if len(msh2) < 4 or len(set(msh2[:4] + sep)) != 5 or sep.isalnum():
        raise Problem(
            f"the encoding characters {msh2!r} are not four distinct separators (^~\\& is usual)",
            segment="MSH",
            field=2,
            code=DATA_TYPE,
            ack_code="AR",
        )
    encoding = Encoding(sep, msh2[0], msh2[1], msh2[2], msh2[3])
    segments: list[Segment] = []
    counts: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        parts = line.split(sep)
        seg_id = parts[0]
        if not SEGMENT_ID.match(seg_id):
            raise Problem(
                f"segment {number} has no valid segment id (it starts {line[:12]!r})",
                code=UNSUPPORTED_MESSAGE if number == 1 else "100",
                ack_code="AE",
            )
        if seg_id == "MSH":
            if number != 1:
                raise Problem("a second MSH segment: send one message at a time", segment="MSH", code="100")
            parts = ["MSH", sep, *parts[1:]]
        counts[seg_id] = counts.get(seg_id, 0) + 1
        segments.append(Segment(seg_id, parts, counts[seg_id]))
    return Message(segments=segments, encoding=encoding, text=text, codec=codec)


def split_messages(raw: bytes) -> list[bytes]:
    """A file of one or more messages (optionally inside FHS/BHS batch envelopes) -> each message's bytes."""
    lines = [line for line in re.split(rb"\r\n|\r|\n", raw.lstrip(b"\xef\xbb\xbf")) if line.strip()]
    messages: list[list[bytes]] = []
    for line in lines:
        if line[:3] in (b"FHS", b"BHS", b"BTS", b"FTS"):
            continue
        if line.startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(line)
    return [b"\r".join(parts) + b"\r" for parts in messages]


_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$")


def parse_dtm(value: str, *, where: Problem) -> dt.datetime | None:
    """HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) -> an aware datetime, local time when no offset is given.

    `where` is the problem to raise, already naming the field, when the value is not a date and time.
    """
    value = value.strip()
    if not value:
        return None
    match = _DTM.match(value)
    if not match:
        where.text = f"{value!r} is not an HL7 date/time (YYYYMMDD[HHMM[SS]][+ZZZZ])"
        where.code = DATA_TYPE
        raise where
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = dt.datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")[:6]),
        )
    except ValueError as exc:
        where.text = f"{value!r} is not a real date/time ({exc})"
        where.code = DATA_TYPE
        raise where from None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        return moment.replace(tzinfo=dt.timezone(sign * delta))
    return moment.replace(tzinfo=ZoneInfo(timezone.get_current_timezone_name()))


def parse_date(value: str, *, where: Problem) -> dt.date | None:
    moment = parse_dtm(value, where=where)
    return moment.date() if moment else None


def escape(value: str, encoding: Encoding = Encoding()) -> str:
    """Text -> an HL7 value: the separators and the escape character written as escape sequences."""
    esc = encoding.escape
    out = value.replace(esc, f"{esc}E{esc}")
    for char, name in (
        (encoding.field, "F"),
        (encoding.component, "S"),
        (encoding.subcomponent, "T"),
        (encoding.repetition, "R"),
    ):
        out = out.replace(char, f"{esc}{name}{esc}")
    return out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{esc}.br{esc}")


def format_dtm(moment: dt.datetime) -> str:
    """An aware datetime -> HL7 DTM with its UTC offset, in the practice's time zone."""
    local = timezone.localtime(moment)
    offset = local.strftime("%z") or "+0000"
    return local.strftime("%Y%m%d%H%M%S") + offset
