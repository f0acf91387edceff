"""The ACK answered for every inbound message (original acknowledgement mode).

AA: accepted, the referral exists. AE: an error in the content (a field missing or wrong), named by an ERR
segment (ERR-2 location, ERR-3 the table 0357 code, ERR-4 severity, ERR-8 the sentence for a person).
AR: rejected outright (not a message type, version or character set refloop takes).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.utils import timezone

from refloop.interop.hl7.parse import Encoding, Message, escape, format_dtm
from refloop.interop.hl7.problems import CODE_TEXT, Problem


def new_control_id() -> str:
    return uuid.uuid4().hex[:20].upper()


def header(
    *,
    message_type: str,
    control_id: str,
    receiving_application: str = "",
    receiving_facility: str = "",
    processing_id: str = "P",
    version: str = "2.5.1",
    charset: str = "",
) -> str:
    """An MSH segment from refloop (MSH-3/4 from the settings)."""
    fields = [
        "MSH",
        "^~\\&",
        settings.HL7_APPLICATION,
        settings.HL7_FACILITY,
        receiving_application,
        receiving_facility,
        format_dtm(timezone.now()),
        "",
        message_type,
        control_id,
        processing_id or "P",
        version or "2.5.1",
    ]
    if charset:
        fields += ["", "", "", "", "", charset]
    return "|".join(fields)


def ack_for(
    message: Message | None,
    *,
    code: str,
    problem: Problem | None = None,
    text: str = "",
) -> str:
    """The ACK text (segments joined with CR) answering `message` (None when even its MSH was unreadable)."""
    enc = Encoding()  # the ACK is written with the usual separators, whatever the sender used
    msh = message.msh if message is not None else None
    trigger = message.value(msh, 9, 2) if message is not None else ""
    version = message.value(msh, 12) if message is not None else ""
    segments = [
        header(
            message_type=f"ACK^{trigger}^ACK" if trigger else "ACK",
            control_id=new_control_id(),
            receiving_application=message.raw(msh, 3) if message is not None else "",
            receiving_facility=message.raw(msh, 4) if message is not None else "",
            processing_id=message.value(msh, 11) if message is not None else "P",
            version=version if version.startswith("2.") else "2.5.1",
            charset=message.raw(msh, 18) if message is not None else "",
        )
    ]
    control_id = message.raw(msh, 10) if message is not None else ""
    note = text or (str(problem) if problem else "")
    segments.append("|".join(["MSA", code, control_id, escape(note[:80], enc)]))
    if problem is not None:
        location = ""
        if problem.segment:
            parts = [problem.segment, str(problem.occurrence)]
            if problem.field is not None:
                parts += [str(problem.field), str(problem.repetition)]
                if problem.component is not None:
                    parts.append(str(problem.component))
            location = "^".join(parts)
        error = f"{problem.code}^{CODE_TEXT.get(problem.code, '')}^HL70357"
        segments.append("|".join(["ERR", "", location, error, "E", "", "", "", escape(str(problem), enc)]))
    return "\r".join(segments) + "\r"


def ack_code_of(ack: str) -> str:
    """MSA-1 of an ACK text ('' when there is none)."""
    for line in ack.replace("\n", "\r").split("\r"):
        if line.startswith("MSA"):
            parts = line.split(line[3]) if len(line) > 3 else []
            return parts[1] if len(parts) > 1 else ""
    return ""
