"""What every router shares: the error body, the declared error answers, paging, ETags and the audit call."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet, UniqueConstraint
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.errors import HttpError

from refloop.accounts.audit import audit_record

MAX_PAGE = 200
DEFAULT_PAGE = 50


class FieldError(Schema):
    field: str = Field(description="The input, as `body.patient.birth_date` or `query.limit`; empty for the whole.")
    message: str


class ErrorOut(Schema):
    message: str = Field(description="What was wrong, naming the field when one field was.")
    errors: list[FieldError] = []


# What each status means in this API; every operation declares the ones it can answer.
ERROR_MEANINGS = {
    400: "The body is not JSON, or the request holds a NUL character or a number out of range.",
    401: "No valid API key and no session.",
    403: "The key lacks the scope, or the role may not do this (or the CSRF token is missing).",
    404: "No such record.",
    409: "The workflow refused the step, or the Idempotency-Key was used with a different body.",
    412: "If-Match does not match the record's current ETag: someone changed it since it was read.",
    422: "The input is not valid; `errors` names each field.",
    428: "Updates need If-Match with the ETag the record was read with.",
}


def answers(ok: dict[int, Any], *codes: int) -> dict[int, Any]:
    """The response map of an operation: its success answers plus 400, 401, 403, 422 and the `codes` it adds.
    (400 for every operation: malformed input is refused before any view, see refloop.middleware.)"""
    errors = {400, 401, 403, 422, *codes}
    return ok | {code: ErrorOut for code in sorted(errors)}


def error(status: int, message: str, field: str = "") -> HttpError:
    exc = HttpError(status, message)
    exc.field = field
    return exc


@functools.cache
def _unique_constraints() -> dict[str, tuple[str, str, str]]:
    """Unique constraint name -> (its first field, the field's label, the model's label), over every model."""
    found = {}
    for model in apps.get_models():
        for constraint in model._meta.constraints:
            if isinstance(constraint, UniqueConstraint) and constraint.fields:
                field = model._meta.get_field(constraint.fields[0])
                found[constraint.name] = (field.name, str(field.verbose_name), str(model._meta.verbose_name))
    return found


def _named(message: str, prefix: str) -> dict[str, str]:
    """A "Constraint “x” is violated." message said as the field it is about, when x is a unique constraint."""
    for name, (field, label, model) in _unique_constraints().items():
        if f"“{name}”" in message:
            return {"field": f"{prefix}.{field}", "message": f"Another {model} already has this {label}."}
    return {"field": "", "message": message}


def validation_errors(exc: ValidationError, prefix: str = "body") -> list[dict[str, str]]:
    """A Django ValidationError as field errors (non-field errors name no field, unless they are about one)."""
    if hasattr(exc, "error_dict"):
        out = []
        for name, errors in exc.message_dict.items():
            if name in ("__all__", None):
                out += [_named(message, prefix) for message in errors]
            else:
                out += [{"field": f"{prefix}.{name}", "message": message} for message in errors]
        return out
    return [_named(message, prefix) for message in exc.messages]


def summary(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)


def related(model, pk: int | None, field: str, queryset=None):
    """The row `pk` names, or a 422 naming the field that named it."""
    if pk is None:
        return None
    found = (queryset if queryset is not None else model.objects).filter(pk=pk).first()
    if found is None:
        raise error(422, f"There is no {model._meta.verbose_name} with id {pk}.", field)
    return found


# Paging


class PageParams(Schema):
    limit: int = Field(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description=f"Rows per page (at most {MAX_PAGE}).")
    offset: int = Field(0, ge=0, le=10_000_000, description="Rows to skip.")


def page(queryset: QuerySet, params: PageParams) -> tuple[list, dict[str, Any]]:
    """One page of `queryset` and the page's figures (count, limit, offset, next offset or null)."""
    count = queryset.count()
    rows = list(queryset[params.offset : params.offset + params.limit])
    following = params.offset + params.limit
    return rows, {
        "count": count,
        "limit": params.limit,
        "offset": params.offset,
        "next_offset": following if following < count else None,
    }


# Optimistic concurrency


def etag(record: Model) -> str:
    """The record's ETag: its version where it keeps one, else a digest of when it was last saved."""
    version = getattr(record, "version", None)
    if version is not None:
        return f'"{record._meta.model_name}-{record.pk}-v{version}"'
    stamp = hashlib.sha256(f"{record.pk}:{record.updated_at.isoformat()}".encode()).hexdigest()[:16]
    return f'"{record._meta.model_name}-{record.pk}-{stamp}"'


def if_match_header():
    """The If-Match parameter as the OpenAPI document shows it (the check itself reads the request)."""
    from ninja import Header

    return Header(None, alias="If-Match", max_length=200, description="The ETag the record was read with.")


def if_match(request: HttpRequest, record: Model) -> None:
    """Refuse an update sent without If-Match (428) or with an ETag that is no longer current (412)."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise error(
            428,
            "Send If-Match with the ETag from reading the record, so no one else's change is lost.",
            "header.If-Match",
        )
    sent = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if etag(record) not in sent:
        raise error(
            412,
            "The record changed since you read it (If-Match does not match its ETag): read it again.",
            "header.If-Match",
        )


def expected_version(request: HttpRequest, record: Model) -> int:
    """The version the caller read, after the If-Match checks: the service re-checks it under its row lock."""
    if_match(request, record)
    return record.version


# Audit


def audit(request: HttpRequest, action: str, target: Model | None = None, **detail: Any) -> None:
    """Record a read or write of patient data, naming the user or the API key."""
    audit_record(action=f"api.{action}", target=target, detail=detail or None, **request.auth.audit())
