"""The CapabilityStatement: exactly the interactions, search parameters and formats views.py serves.

tests/interop/test_fhir_capability_statement.py calls each interaction listed here and checks that nothing
else under /fhir/ answers, so this text and the code cannot drift apart silently.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# What the views do: resource type -> (interactions, search parameters (name, type, definition, documentation)).
RESOURCES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, str, str], ...]]] = {
    "ServiceRequest": (("create", "read"), ()),
    "Bundle": (("create",), ()),
    "Task": (
        ("read", "search-type"),
        (
            ("focus", "reference", "http://hl7.org/fhir/SearchParameter/Task-focus",
             "The referral's ServiceRequest: ServiceRequest/{id} or {id}; several separated by commas."),
            ("status", "token", "http://hl7.org/fhir/SearchParameter/Task-status",
             "Task.status codes, several separated by commas."),
            ("_lastUpdated", "date", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
             "Prefixes eq, gt, ge, lt, le; repeat the parameter for a range."),
        ),  # fmt: skip
    ),
    "DocumentReference": (("read",), ()),
}
DOCS = {
    "ServiceRequest": "create: a referral, with the Patient and the requester (Practitioner or PractitionerRole "
    "with an http://hl7.org/fhir/sid/us-npi identifier) contained or given by identifier. Answers 201 with the "
    "ServiceRequest, 200 when the same request (same placer identifier, or same content) was taken before, 202 "
    "with an OperationOutcome when the requester is not in the directory (queued for review). read: the referral.",
    "Bundle": "create: a transaction or a BSeR referral message Bundle holding ServiceRequest, Patient, "
    "Practitioner/PractitionerRole, Organization, Coverage and supporting documents (DocumentReference or Binary, "
    "inline PDF/PNG/JPEG/TIFF). Nothing but the referrals is stored; the Bundle itself is not kept as a resource.",
    "Task": "The referral's progress: status and businessStatus (BSeR TaskBusinessStatusCS); the sent consult "
    "reports are DocumentReferences in Task.output. Search results are paged with _count (at most 200) and "
    "_offset; other parameters are refused with 400.",
    "DocumentReference": "A sent consult report, its PDF inline, related to the referral's ServiceRequest.",
}


def _software_version() -> str:
    try:
        return version("refloop")
    except PackageNotFoundError:
        return "0"


def capability_statement(base: str) -> dict:
    resources = []
    for kind, (interactions, params) in RESOURCES.items():
        entry: dict = {
            "type": kind,
            "documentation": DOCS[kind],
            "interaction": [{"code": code} for code in interactions],
        }
        if params:
            entry["searchParam"] = [
                {"name": name, "type": kind_, "definition": definition, "documentation": doc}
                for name, kind_, definition, doc in params
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "id": "refloop",
        "status": "active",
        "date": "2026-11-28",
        "publisher": "refloop",
        "kind": "instance",
        "software": {"name": "refloop", "version": _software_version()},
        "implementation": {"description": "refloop referral intake and closed-loop status", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Every interaction but this CapabilityStatement needs an API key (Authorization: "
                "Bearer KEY) whose scopes hold the action, or a signed-in session: creating referrals needs "
                "referrals.edit, reading Task and ServiceRequest referrals.view, DocumentReference letters.view.",
                "security": {
                    "service": [{"text": "Bearer API key, or a signed-in session"}],
                    "description": "API keys are created by an administrator; unknown or revoked keys get 401.",
                },
                "resource": resources,
                "interaction": [{"code": "transaction", "documentation": "POST a transaction Bundle to the base."}],
            }
        ],
    }
