"""ICD-10-CM codes checked for form (not against the full code set, which the practice's EHR owns).

A code is a letter, a digit, a digit or letter, then optionally a dot and one to four more characters: M54.5,
S83.511A, E11.9, Z96.651. Codes typed without the dot (M545) are normalized to the dotted form.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"^([A-Z][0-9][0-9A-Z])(?:\.?([0-9A-Z]{1,4}))?$")


def normalize_icd10(raw: str) -> str:
    """The dotted, upper-case form of `raw`; ValueError naming the code when it is not ICD-10-CM shaped."""
    text = raw.strip().upper()
    match = _CODE.match(text)
    if not match:
        raise ValueError(f"{raw.strip()!r} is not an ICD-10-CM code (expected a form like M54.5 or S83.511A)")
    category, rest = match.groups()
    return f"{category}.{rest}" if rest else category


def parse_icd10_list(raw: str | list[str]) -> list[str]:
    """Codes separated by commas, semicolons or spaces, each normalized; duplicates dropped, order kept."""
    items = raw if isinstance(raw, list) else re.split(r"[,;\s]+", raw or "")
    codes: list[str] = []
    for item in items:
        if item and item.strip():
            code = normalize_icd10(item)
            if code not in codes:
                codes.append(code)
    return codes
