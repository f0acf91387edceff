"""The bulk referral import pages: upload a CSV or XLSX file, preview it, map its columns, dry-run, import.

The uploaded file waits under DATA_DIR/imports/referrals/ with a random name that only the uploader's session
knows. It holds patient data, so it is deleted once imported and anything left behind is removed after a day.
Every step calls importer.referral_import; a file it refuses is reported on the page, never as a server error.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.db import DatabaseError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.referrals.importer import (
    CANONICAL_FIELDS,
    UPLOAD_MAX_BYTES,
    ImportRefused,
    ImportReport,
    automatic_fields,
    file_kind,
    preview,
    referral_import,
    too_large,
)

SESSION_KEY = "referral_imports"
KEEP_FOR = dt.timedelta(days=1)
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART_OVERHEAD = 64 * 1024


def _upload_dir() -> Path:
    path = Path(settings.DATA_DIR) / "imports" / "referrals"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _get_upload_for_user(request: HttpRequest, token: str) -> dict:
    """The upload `token` names, if this session made it: nobody else's file is reachable by guessing a URL."""
    upload = request.session.get(SESSION_KEY, {}).get(token) if _TOKEN.match(token) else None
    if upload is None:
        raise Http404("There is no such upload in this session.")
    return upload


def _remove_stale(folder: Path) -> None:
    cutoff = (dt.datetime.now() - KEEP_FOR).timestamp()
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


@require_action("referrals.import")
def import_upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _upload_page(request)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > UPLOAD_MAX_BYTES + _MULTIPART_OVERHEAD:
        return _upload_page(request, too_large(length, UPLOAD_MAX_BYTES), status=413)
    upload = request.FILES.get("file")
    if upload is None:
        return _upload_page(request, "Choose a CSV or Excel (.xlsx) file to import.", status=400)
    if upload.size > UPLOAD_MAX_BYTES:
        return _upload_page(request, too_large(upload.size, UPLOAD_MAX_BYTES), status=413)
    folder = _upload_dir()
    _remove_stale(folder)
    token = secrets.token_hex(16)
    path = folder / token
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        kind = file_kind(path, max_bytes=UPLOAD_MAX_BYTES)
        preview(path, kind)
    except ImportRefused as exc:
        path.unlink(missing_ok=True)
        return _upload_page(request, str(exc), status=400)
    uploads = request.session.get(SESSION_KEY, {})
    uploads[token] = {"name": Path(upload.name or "upload").name[:200], "kind": kind, "size": upload.size}
    request.session[SESSION_KEY] = uploads
    return redirect("referrals:import_preview", token=token)


def _upload_page(request: HttpRequest, error: str = "", status: int = 200) -> HttpResponse:
    context = {"error": error, "max_mb": UPLOAD_MAX_BYTES // (1024 * 1024)}
    return render(request, "referrals/import_upload.html", context, status=status)


@require_GET
@require_action("referrals.import")
def import_preview(request: HttpRequest, token: str) -> HttpResponse:
    upload = _get_upload_for_user(request, token)
    return _preview_page(request, token, upload)


def _preview_page(
    request: HttpRequest,
    token: str,
    upload: dict,
    *,
    columns: list[str | None] | None = None,
    options: dict | None = None,
    report: ImportReport | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    path = _upload_dir() / token
    if not path.exists():
        messages.warning(request, "That upload is no longer here (imported, or older than a day). Upload it again.")
        return redirect("referrals:import")
    try:
        header, rows = preview(path, upload["kind"])
    except ImportRefused as exc:
        return _upload_page(request, str(exc), status=400)
    columns = columns if columns is not None else automatic_fields(header)
    # The preview shows the file's first rows (patients' names and birth dates): a read, audited once per page.
    audit_record(
        actor=request.user,
        action="referral.import.preview",
        detail={"upload": token[:8], "rows_shown": len(rows), "after_dry_run": report is not None},
    )
    mapping = [
        {"index": i, "name": name, "field": columns[i] or "", "samples": [r[i] for r in rows[:3] if r[i]]}
        for i, name in enumerate(header)
    ]
    context = {
        "token": token,
        "upload": upload,
        "header": header,
        "rows": rows,
        "mapping": mapping,
        "fields": CANONICAL_FIELDS,
        "options": options or {"date_format": "", "accept_valid": False},
        "report": report,
        "error": error,
        "rejected_ready": report is not None and report.rejected > 0 and bool(report.rejected_path),
    }
    return render(request, "referrals/import_preview.html", context, status=status)


def _posted_options(request: HttpRequest, header: list[str]) -> tuple[list[str | None], dict]:
    automatic = automatic_fields(header)
    columns: list[str | None] = []
    for i, auto in enumerate(automatic):
        chosen = request.POST.get(f"map-{i}", auto or "")
        columns.append(chosen if chosen in CANONICAL_FIELDS else None)
    options = {
        "date_format": request.POST.get("date_format", "").strip()[:40],
        "accept_valid": request.POST.get("accept_valid") == "on",
    }
    return columns, options


@require_POST
@require_action("referrals.import")
def import_dry_run(request: HttpRequest, token: str) -> HttpResponse:
    return _run(request, token, dry_run=True)


@require_POST
@require_action("referrals.import")
def import_run(request: HttpRequest, token: str) -> HttpResponse:
    return _run(request, token, dry_run=False)


def _run(request: HttpRequest, token: str, *, dry_run: bool) -> HttpResponse:
    upload = _get_upload_for_user(request, token)
    folder = _upload_dir()
    path = folder / token
    if not path.exists():
        return _preview_page(request, token, upload)
    rejected_path = folder / f"{token}-rejected.csv"
    columns, options = None, None
    try:
        header, _rows = preview(path, upload["kind"])
        columns, options = _posted_options(request, header)
        report = referral_import(
            path=path, columns=columns, date_format=options["date_format"] or None, dry_run=dry_run,
            accept_valid=options["accept_valid"], rejected_path=rejected_path, by=request.user,
            max_bytes=UPLOAD_MAX_BYTES, file_name=upload["name"],
        )  # fmt: skip
    except ImportRefused as exc:
        rejected_path.unlink(missing_ok=True)
        return _preview_page(request, token, upload, columns=columns, options=options, error=str(exc), status=400)
    except DatabaseError as exc:  # e.g. another process held the database longer than the lock timeout
        rejected_path.unlink(missing_ok=True)
        error = f"The database could not take the import just now ({exc}). Nothing was imported; try again shortly."
        return _preview_page(request, token, upload, columns=columns, options=options, error=error, status=503)
    if not report.rejected:
        rejected_path.unlink(missing_ok=True)
    if not report.committed:
        return _preview_page(request, token, upload, columns=columns, options=options, report=report)
    path.unlink(missing_ok=True)
    upload["imported"] = True
    request.session.modified = True
    context = {"token": token, "upload": upload, "report": report, "rejected_ready": report.rejected > 0}
    return render(request, "referrals/import_result.html", context)


@require_GET
@require_action("referrals.import")
def import_rejected(request: HttpRequest, token: str) -> HttpResponse:
    """The rows a run rejected, as CSV: cells neutralized by csvsafe when the file was written."""
    _get_upload_for_user(request, token)
    path = _upload_dir() / f"{token}-rejected.csv"
    if not path.exists():
        raise Http404("No rejected rows for this upload.")
    audit_record(actor=request.user, action="referral.import_rejected_download", detail={"bytes": path.stat().st_size})
    return FileResponse(
        path.open("rb"), as_attachment=True, filename="rejected-referrals.csv", content_type="text/csv; charset=utf-8"
    )
