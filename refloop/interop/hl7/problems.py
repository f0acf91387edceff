"""What is wrong with an HL7 message, said precisely enough for the sender to fix it.

Each problem names where it is (segment, its occurrence, field, repetition, component) and carries the HL7
error code of table 0357, so the ACK's ERR segment points the sending system at the exact element.
"""

from __future__ import annotations

from dataclasses import dataclass

# HL7 table 0357 (message error condition codes), the ones refloop answers with.
SEGMENT_SEQUENCE = "100"
REQUIRED_MISSING = "101"
DATA_TYPE = "102"
TABLE_VALUE = "103"
UNSUPPORTED_MESSAGE = "200"
UNSUPPORTED_EVENT = "201"
UNSUPPORTED_PROCESSING_ID = "202"
UNSUPPORTED_VERSION = "203"
UNKNOWN_KEY = "204"
DUPLICATE_KEY = "205"
INTERNAL_ERROR = "207"

CODE_TEXT = {
    SEGMENT_SEQUENCE: "Segment sequence error",
    REQUIRED_MISSING: "Required field missing",
    DATA_TYPE: "Data type error",
    TABLE_VALUE: "Table value not found",
    UNSUPPORTED_MESSAGE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION: "Unsupported version id",
    UNKNOWN_KEY: "Unknown key identifier",
    DUPLICATE_KEY: "Duplicate key identifier",
    INTERNAL_ERROR: "Application internal error",
}


@dataclass
class Problem(Exception):
    """A message refloop will not act on. `ack_code` is AR (rejected: not a message refloop takes at all) or
    AE (an error in its content)."""

    text: str
    segment: str = ""
    field: int | None = None
    component: int | None = None
    code: str = REQUIRED_MISSING
    ack_code: str = "AE"
    occurrence: int = 1
    repetition: int = 1

    def __post_init__(self) -> None:
        super().__init__(self.text)

    @property
    def location(self) -> str:
        """PID-5.2, MSH-9, RF1 ...: the element as people write it."""
        if not self.segment:
            return ""
        where = self.segment
        if self.field is not None:
            where += f"-{self.field}"
            if self.component is not None:
                where += f".{self.component}"
        return where

    def __str__(self) -> str:
        return f"{self.location}: {self.text}" if self.location else self.text
