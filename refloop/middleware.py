"""Request-wide guards against malformed input that no single form or view can give."""

from __future__ import annotations

import logging

from django.db import DataError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

log = logging.getLogger(__name__)


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    """The 400 in the caller's own language: JSON for the API, an OperationOutcome for FHIR, a page otherwise."""
    # Only the method and path are logged: never a value from the request, which may be patient data.
    log.info("refused malformed input: %s %s", request.method, request.path)
    if request.path.startswith("/api/"):
        return JsonResponse({"message": message, "errors": []}, status=400)
    if request.path.startswith("/fhir/"):
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "invalid", "diagnostics": message}],
        }
        return JsonResponse(outcome, status=400, content_type="application/fhir+json")
    return render(request, "400.html", {"message": message}, status=400)


class BadInputMiddleware:
    """Answer two kinds of malformed input with a 400 that names the problem, before they reach a view.

    - A NUL character in a query parameter or a form field. It is never part of real text, and PostgreSQL
      cannot store it (in text or JSON, including the audit trail's record of the filters used).
    - A number too large for the database (an id of forty digits in a form or a query). Django's choice fields
      look such a value up before they can call it invalid, and the driver refuses it (SQLite raises
      OverflowError, PostgreSQL "out of range"). Nothing is written: the request's transactions roll back.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            return _bad_request(request, "The request contains a NUL character, which is never valid in text.")
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OverflowError) or (
            isinstance(exception, DataError) and "out of range" in str(exception)
        ):
            return _bad_request(request, "A number in the request is out of range. Check the values and try again.")
        return None


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.META.get("QUERY_STRING", "") or "%00" in request.META.get("QUERY_STRING", ""):
        return True
    content_type = request.META.get("CONTENT_TYPE", "")
    if request.method == "POST" and content_type.startswith(("application/x-www-form-urlencoded", "multipart/")):
        return any("\x00" in value for values in request.POST.lists() for value in values[1])
    return False
