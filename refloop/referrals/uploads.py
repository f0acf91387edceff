"""What a referral attachment may be: PDF, PNG, JPEG or TIFF, told by its first bytes, at most 20 MB.

The name and the browser's declared type are whatever the sender's fax server or scanner chose, so neither is
trusted: a `.pdf` that is really an HTML page or a script is refused before it reaches storage.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

# The default limit; an installation may set REFLOOP_ATTACHMENT_MAX_BYTES in its settings.
ATTACHMENT_MAX_BYTES = 20 * 1024 * 1024

# (leading bytes, content type, what staff call it)
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "PDF"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "PNG"),
    (b"\xff\xd8\xff", "image/jpeg", "JPEG"),
    (b"II*\x00", "image/tiff", "TIFF"),
    (b"MM\x00*", "image/tiff", "TIFF"),
)
ALLOWED_KINDS = "PDF, PNG, JPEG or TIFF"


@dataclass(frozen=True)
class CheckedUpload:
    content_type: str
    size: int
    sha256: str


def attachment_max_bytes() -> int:
    return int(getattr(settings, "REFLOOP_ATTACHMENT_MAX_BYTES", ATTACHMENT_MAX_BYTES))


def megabytes(size: int) -> str:
    value = size / (1024 * 1024)
    return f"{value:.0f} MB" if value == int(value) else f"{value:.1f} MB"


def sniff(head: bytes) -> str | None:
    """The content type the leading bytes prove, or None when they match no allowed kind."""
    for signature, content_type, _ in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    return None


def kind_label(content_type: str) -> str:
    return next((label for _, ctype, label in _SIGNATURES if ctype == content_type), content_type)


def check_upload(upload: UploadedFile) -> CheckedUpload:
    """The upload's real type, size and SHA-256; ValidationError saying why when it may not be attached."""
    name = upload.name or "The file"
    limit = attachment_max_bytes()
    if not upload.size:
        raise ValidationError(f"{name} is empty.")
    if upload.size > limit:
        raise ValidationError(
            f"{name} is over the {megabytes(limit)} limit for attachments ({megabytes(upload.size)}); "
            "split or compress it and attach it again."
        )
    upload.seek(0)
    content_type = sniff(upload.read(16))
    if content_type is None:
        raise ValidationError(
            f"{name} is not a {ALLOWED_KINDS} file (its content does not match its name); "
            "scan or save it as one of those and attach it again."
        )
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return CheckedUpload(content_type=content_type, size=upload.size, sha256=digest.hexdigest())
