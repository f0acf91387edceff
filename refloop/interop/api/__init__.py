"""The JSON API at /api/: one NinjaAPI, a router per area, the OpenAPI document at /api/openapi.json and its
docs at /api/docs (served from the django-ninja wheel's own files: no CDN on a closed network).

Errors always answer `{"message": ..., "errors": [{"field": ..., "message": ...}]}`, and every operation lists
the error statuses it can give, so a client generated from the document handles each one.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as InputError

from refloop.interop.api import directory, outreach, patients, referrals
from refloop.interop.api.auth import action_of
from refloop.interop.api.common import summary, validation_errors
from refloop.referrals.workflow import TransitionRefused


class RefloopAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        """The document, with the matrix action each operation needs written into its description."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        needed = {}
        for _prefix, router in self._routers:
            for view in router.path_operations.values():
                for operation in view.operations:
                    needed[self.get_openapi_operation_id(operation)] = action_of(operation)
        for methods in schema["paths"].values():
            for spec in methods.values():
                action = needed.get(spec.get("operationId"))
                if action:
                    spec["x-refloop-action"] = action
                    note = f"Needs the action `{action}`: an API key with that scope, or a role the matrix allows."
                    spec["description"] = f"{spec.get('description', '')}\n\n{note}".strip()
        return schema


api = RefloopAPI(
    title="refloop API",
    version="1",
    description=(
        "Referrals, patients, the referral directory and liaison outreach. Authenticate with "
        "`Authorization: Bearer KEY` (keys are made on Settings → API keys or by `refloop apikey create`); "
        "a key may do the operations whose action is among its scopes. Updates need `If-Match` with the ETag "
        "the record was read with. Lists page with `limit` and `offset`."
    ),
    urls_namespace="api",
    auth=None,  # each operation names its own action of the permission matrix (auth.needs)
)
api.add_router("/", referrals.router)
api.add_router("/", patients.router)
api.add_router("/", directory.router)
api.add_router("/", outreach.router)


def _answer(request: HttpRequest, status: int, message: str, errors: list[dict] | None = None) -> HttpResponse:
    return api.create_response(request, {"message": message, "errors": errors or []}, status=status)


def _field(loc) -> str:
    """`body.patient.email`, `query.limit`: ninja puts the body parameter's own name second; clients never see it."""
    parts = [str(part) for part in loc]
    if len(parts) >= 2 and parts[0] == "body":
        del parts[1]
    return ".".join(parts)


@api.exception_handler(InputError)
def _input_error(request, exc: InputError):
    errors = [
        {"field": _field(error.get("loc", ())), "message": error.get("msg", "Not valid.")} for error in exc.errors
    ]
    return _answer(request, 422, summary(errors) or "The input is not valid.", errors)


@api.exception_handler(DjangoValidationError)
def _rule_error(request, exc: DjangoValidationError):
    errors = validation_errors(exc)
    return _answer(request, 422, summary(errors), errors)


@api.exception_handler(TransitionRefused)
def _refused(request, exc: TransitionRefused):
    return _answer(request, 409, str(exc))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc: AuthenticationError):
    response = _answer(request, 401, "Authentication required: send Authorization: Bearer KEY, or log in.")
    response["WWW-Authenticate"] = 'Bearer realm="refloop"'
    return response


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    field = getattr(exc, "field", "")
    message = str(exc)
    return _answer(request, exc.status_code, message, [{"field": field, "message": message}] if field else [])


@api.exception_handler(Http404)
def _not_found(request, exc: Http404):
    return _answer(request, 404, "Not found: there is no record with that id.")


def urlpatterns() -> list:
    """The API's URL patterns, exempt from the login redirect: callers authenticate per operation."""
    patterns, _app, _namespace = api.urls
    for pattern in patterns:
        login_not_required(pattern.callback)
    return patterns
