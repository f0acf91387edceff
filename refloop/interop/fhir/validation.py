"""Structural validation of incoming FHIR JSON with the fhir.resources R4B models, as OperationOutcome issues.

fhir.resources checks types, cardinality and formats (dates, ids, unknown elements) but not required codes'
values; intake.py adds those and the rules of a referral. Every issue names the element by a FHIRPath-like
expression (`Bundle.entry[2].resource.birthDate`), so a sender's developer can find it without our logs.
"""

from __future__ import annotations

import pydantic
from fhir.resources.R4B import get_fhir_model_class

from refloop.interop.fhir.outcome import FhirError, Issue


def _path(prefix: str, loc: tuple) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("__root__",):
            out += f".{part}"
    return out


def _known(resource: object, where: str) -> list[Issue]:
    """Every resourceType, contained and in Bundle entries, must be an R4 resource (the models raise otherwise)."""
    if not isinstance(resource, dict):
        return [Issue(where, "Expected a JSON object holding a FHIR resource.", "structure")]
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind:
        return [Issue(f"{where}.resourceType", "resourceType is missing.", "required")]
    try:
        get_fhir_model_class(kind)
    except (ValueError, KeyError):
        return [Issue(f"{where}.resourceType", f"{kind!r} is not a FHIR R4 resource type.", "not-supported")]
    issues: list[Issue] = []
    contained = resource.get("contained")
    if isinstance(contained, list):
        for i, item in enumerate(contained):
            issues += _known(item, f"{where}.contained[{i}]")
    entries = resource.get("entry") if kind == "Bundle" else None
    if isinstance(entries, list):
        for i, entry in enumerate(entries):
            if isinstance(entry, dict) and "resource" in entry:
                issues += _known(entry["resource"], f"{where}.entry[{i}].resource")
    return issues


def validate_structure(resource: object, expected: str) -> None:
    """Raise FhirError(400) unless `resource` is a well-formed R4 `expected` resource."""
    issues = _known(resource, expected)
    if not issues and resource.get("resourceType") != expected:
        issues = [Issue(f"{expected}.resourceType", f"This endpoint takes a {expected}, not a "
                        f"{resource.get('resourceType')}.", "invalid")]  # fmt: skip
    if issues:
        raise FhirError(400, issues)
    try:
        get_fhir_model_class(expected).model_validate(resource)
    except pydantic.ValidationError as exc:
        raise FhirError(400, [_issue(expected, error) for error in exc.errors()[:20]]) from None
    except (ValueError, TypeError, KeyError) as exc:  # a model that fails outside pydantic's error reporting
        raise FhirError(400, [Issue(expected, f"Not a valid {expected}: {exc}", "structure")]) from None


def _issue(prefix: str, error: dict) -> Issue:
    where = _path(prefix, tuple(error.get("loc", ())))
    kind = error.get("type", "")
    if kind == "missing":
        return Issue(where, f"{where.rsplit('.', 1)[-1]} is required.", "required")
    if kind == "extra_forbidden":
        return Issue(where, f"{where.rsplit('.', 1)[-1]} is not an element of this resource.", "structure")
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return Issue(where, message, "value")
