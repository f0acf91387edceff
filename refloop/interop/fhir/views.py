"""The FHIR endpoints: authenticate, check the action in the matrix, translate, audit. No referral rule here.

A caller is an API key (`Authorization: Bearer KEY`, its scopes are matrix actions) or a signed-in user (their
role, and Django's CSRF check on writes). Anonymous callers get 401, a caller without the action 403, both
with an OperationOutcome; only the CapabilityStatement is public (it holds no patient data).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from refloop.accounts.audit import audit_record
from refloop.accounts.roles import MATRIX
from refloop.interop.apikeys import bearer_key, key_can
from refloop.interop.fhir import resources
from refloop.interop.fhir.capability import capability_statement
from refloop.interop.fhir.intake import fhir_intake
from refloop.interop.fhir.outcome import FhirError, Issue, operation_outcome, refuse
from refloop.letters.models import ConsultReport, ReportStatus
from refloop.letters.rendering import letter_pdf
from refloop.referrals.models import Referral
from refloop.referrals.workflow import State

FHIR_JSON = "application/fhir+json"
ACCEPTED_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
SEARCH_MAX = 200


@dataclass(frozen=True)
class Caller:
    user: object | None
    label: str


def _respond(body: dict, status: int = 200, location: str = "") -> HttpResponse:
    response = HttpResponse(json.dumps(body, separators=(",", ":")), status=status, content_type=FHIR_JSON)
    if location:
        response["Location"] = location
    return response


def _outcome(error: FhirError) -> HttpResponse:
    response = _respond(operation_outcome(error.issues), error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="refloop"'
    return response


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("/metadata")


def _caller(request: HttpRequest, action: str) -> Caller:
    if request.headers.get("Authorization"):
        key = bearer_key(request)
        if key is None:
            raise refuse(401, "", "The API key is not valid (unknown, revoked or malformed).", "login")
        if not key_can(key, action):
            raise refuse(403, "", f"This API key may not do this: it needs the scope {action}.", "forbidden")
        return Caller(None, key.name)
    user = request.user
    if not user.is_authenticated:
        raise refuse(401, "", "Send an API key (Authorization: Bearer KEY) or sign in.", "login")
    if not user.can(action):
        raise refuse(403, "", f"Your role may not do this ({action}).", "forbidden")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        failure = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {})
        if failure is not None:
            raise refuse(403, "", "The CSRF check failed: a signed-in session writes from refloop's own pages; "
                         "integrations use an API key.", "security")  # fmt: skip
    return Caller(user, user.get_username())


def fhir_endpoint(methods: dict[str, str | None]) -> Callable:
    """`methods` maps each HTTP method to the matrix action it needs (None: public)."""
    for action in methods.values():
        if action is not None and action not in MATRIX:
            raise KeyError(f"unknown action {action!r}")

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_not_required
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                if request.method not in methods:
                    allowed = ", ".join(methods)
                    error = refuse(405, "", f"{request.method} is not supported here; use {allowed}.", "not-supported")
                    response = _outcome(error)
                    response["Allow"] = allowed
                    return response
                action = methods[request.method]
                caller = _caller(request, action) if action else Caller(None, "anonymous")
                return view(request, caller, *args, **kwargs)
            except FhirError as error:
                return _outcome(error)

        wrapper.refloop_actions = methods  # read by tests/interop/test_fhir_access.py
        return wrapper

    return decorator


@fhir_endpoint({"GET": None})
def metadata(request: HttpRequest, caller: Caller) -> HttpResponse:
    return _respond(capability_statement(_base(request)))


def _body(request: HttpRequest, endpoint: str) -> bytes:
    content_type = request.content_type or ""
    if content_type not in ACCEPTED_TYPES:
        raise refuse(415, endpoint, f"Send JSON as application/fhir+json, not {content_type or 'no content type'}.",
                     "not-supported")  # fmt: skip
    try:
        return request.body
    except RequestDataTooBig:
        raise refuse(413, endpoint, "The request is too large.", "too-costly") from None


def _intake(request: HttpRequest, caller: Caller, endpoint: str) -> HttpResponse:
    answer = fhir_intake(
        raw=_body(request, endpoint),
        endpoint=endpoint,
        sender=caller.label,
        by=caller.user,
        by_label=caller.label,
        base=_base(request),
    )
    location = f"{_base(request)}/{answer.location}" if answer.location else ""
    return _respond(answer.body, answer.status, location)


@fhir_endpoint({"POST": "referrals.edit"})
def base(request: HttpRequest, caller: Caller) -> HttpResponse:
    """POST [base] with a transaction Bundle, as FHIR clients send transactions."""
    return _intake(request, caller, "Bundle")


@fhir_endpoint({"POST": "referrals.edit"})
def bundle_create(request: HttpRequest, caller: Caller) -> HttpResponse:
    return _intake(request, caller, "Bundle")


@fhir_endpoint({"POST": "referrals.edit"})
def service_request_create(request: HttpRequest, caller: Caller) -> HttpResponse:
    return _intake(request, caller, "ServiceRequest")


def _referral(pk: str, kind: str) -> Referral:
    referral = None
    if pk.isdigit() and len(pk) < 19:
        referral = _referrals().filter(pk=int(pk)).first()
    if referral is None:
        raise refuse(404, f"{kind}.id", f"There is no {kind} {pk}.", "not-found")
    return referral


def _referrals():
    return Referral.objects.select_related("referring_provider", "other_source", "clinician").prefetch_related(
        "consult_reports"
    )


@fhir_endpoint({"GET": "referrals.view"})
def service_request_read(request: HttpRequest, caller: Caller, pk: str) -> HttpResponse:
    referral = _referral(pk, "ServiceRequest")
    audit_record(actor=caller.user, actor_label=caller.label, action="fhir.servicerequest.read", target=referral)
    return _respond(resources.service_request(referral))


@fhir_endpoint({"GET": "referrals.view"})
def task_read(request: HttpRequest, caller: Caller, pk: str) -> HttpResponse:
    referral = _referral(pk, "Task")
    audit_record(actor=caller.user, actor_label=caller.label, action="fhir.task.read", target=referral)
    return _respond(resources.task(referral))


@fhir_endpoint({"GET": "letters.view"})
def document_reference_read(request: HttpRequest, caller: Caller, pk: str) -> HttpResponse:
    report = None
    if pk.isdigit() and len(pk) < 19:
        report = (
            ConsultReport.objects.select_related("referral", "clinician", "letter")
            .filter(pk=int(pk), status=ReportStatus.SENT)
            .first()
        )
    if report is None or not hasattr(report, "letter"):
        raise refuse(404, "DocumentReference.id", f"There is no DocumentReference {pk}.", "not-found")
    ehr = None
    if report.ehr_pdf:
        with report.ehr_pdf.open("rb") as handle:
            ehr = handle.read()
    audit_record(actor=caller.user, actor_label=caller.label, action="fhir.documentreference.read", target=report,
                 detail={"referral": report.referral_id})  # fmt: skip
    return _respond(resources.document_reference(report, letter_pdf(report.letter), ehr))


# Task search

TASK_STATUS_CODES = frozenset(
    {"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled", "in-progress", "on-hold"}
    | {"failed", "completed", "entered-in-error"}
)
DATE_PREFIXES = ("eq", "gt", "ge", "lt", "le")
RESULT_PARAMS = ("_count", "_offset", "_format")


def _status_filter(value: str) -> Q:
    wanted = Q(pk__in=[])
    for code in value.split(","):
        if code not in TASK_STATUS_CODES:
            raise refuse(400, "status", f"{code!r} is not a Task status code.", "value")
        if code == "completed":  # a closed referral is completed when the patient was seen, else cancelled
            wanted |= Q(state=State.REPORT_SENT) | Q(state=State.CLOSED, seen_at__isnull=False)
        elif code == "cancelled":
            wanted |= Q(state=State.LOST) | Q(state=State.CLOSED, seen_at__isnull=True)
        else:
            wanted |= Q(state__in=[s for s, (status, _, _) in resources.TASK_STATUS.items() if status == code])
    return wanted


def _focus_filter(value: str) -> Q:
    ids = []
    for item in value.split(","):
        tail = item.rstrip("/").split("/")
        if len(tail) >= 2 and tail[-2] != "ServiceRequest":
            raise refuse(400, "focus", f"focus is a ServiceRequest here, not {tail[-2]}.", "value")
        if not tail[-1].isdigit() or len(tail[-1]) > 18:
            ids.append(-1)  # an id that is not ours finds nothing, as it would on any server
        else:
            ids.append(int(tail[-1]))
    return Q(pk__in=ids)


def _moment(text: str, upper: bool) -> dt.datetime:
    """A FHIR date or dateTime as the first (or, with `upper`, the end) instant it covers."""
    try:
        if len(text) == 4:
            day = dt.date(int(text), 12 if upper else 1, 31 if upper else 1)
        elif len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            day = dt.date(year, month, 1)
            if upper:
                day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        elif len(text) == 10:
            day = dt.date.fromisoformat(text)
        else:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return timezone.make_aware(moment) if timezone.is_naive(moment) else moment
    except ValueError:
        raise refuse(400, "_lastUpdated", f"{text!r} is not a FHIR date or dateTime.", "value") from None
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    return start + dt.timedelta(days=1) - dt.timedelta(microseconds=1) if upper else start


def _last_updated_filter(value: str) -> Q:
    prefix, text = (value[:2], value[2:]) if value[:2] in DATE_PREFIXES else ("eq", value)
    low, high = _moment(text, upper=False), _moment(text, upper=True)
    return {
        "eq": Q(updated_at__gte=low, updated_at__lte=high),
        "gt": Q(updated_at__gt=high),
        "ge": Q(updated_at__gte=low),
        "lt": Q(updated_at__lt=low),
        "le": Q(updated_at__lte=high),
    }[prefix]


def _number(request: HttpRequest, name: str, default: int, most: int) -> int:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise refuse(400, name, f"{name} is a whole number, not {raw!r}.", "value")
    return min(int(raw), most)


@fhir_endpoint({"GET": "referrals.view"})
def task_search(request: HttpRequest, caller: Caller) -> HttpResponse:
    where = Q()
    for name in request.GET:
        values = request.GET.getlist(name)
        if name == "focus":
            for value in values:
                where &= _focus_filter(value)
        elif name == "status":
            for value in values:
                where &= _status_filter(value)
        elif name == "_lastUpdated":
            for value in values:
                where &= _last_updated_filter(value)
        elif name not in RESULT_PARAMS:
            raise FhirError(400, [Issue(name, f"Task cannot be searched by {name!r} here: use focus, status or "
                                      "_lastUpdated (see /fhir/metadata).", "not-supported")])  # fmt: skip
    count = _number(request, "_count", 50, SEARCH_MAX)
    offset = _number(request, "_offset", 0, 10**9)
    matches = _referrals().filter(where).order_by("-updated_at", "-pk")
    total = matches.count()
    page = list(matches[offset : offset + count])
    audit_record(actor=caller.user, actor_label=caller.label, action="fhir.task.search",
                 detail={"referrals": [r.pk for r in page], "total": total})  # fmt: skip
    base_url = _base(request)
    query = request.GET.copy()
    self_url = f"{base_url}/Task" + (f"?{query.urlencode()}" if query else "")
    next_url = ""
    if offset + count < total and count:
        query["_offset"] = str(offset + count)
        query["_count"] = str(count)
        next_url = f"{base_url}/Task?{query.urlencode()}"
    body = resources.searchset([resources.task(r) for r in page], total, base_url, self_url, next_url)
    return _respond(body)


@login_not_required
@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return _outcome(refuse(404, "", f"/fhir/{rest} is not served here; see /fhir/metadata.", "not-supported"))
