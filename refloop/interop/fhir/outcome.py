"""OperationOutcome: how every FHIR refusal names the element at fault, and the exception that carries it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    expression: str  # FHIRPath-like location, e.g. "ServiceRequest.requester" or "Bundle.entry[2].resource"
    diagnostics: str
    code: str = "invalid"  # http://hl7.org/fhir/issue-type: invalid, required, value, structure, not-found...
    severity: str = "error"


class FhirError(Exception):
    """A request refused with `status` and an OperationOutcome listing every issue found."""

    def __init__(self, status: int, issues: list[Issue]):
        super().__init__("; ".join(f"{i.expression}: {i.diagnostics}" for i in issues))
        self.status = status
        self.issues = issues


def refuse(status: int, expression: str, diagnostics: str, code: str = "invalid") -> FhirError:
    return FhirError(status, [Issue(expression, diagnostics, code)])


def operation_outcome(issues: list[Issue]) -> dict:
    out = []
    for issue in issues:
        entry = {"severity": issue.severity, "code": issue.code, "diagnostics": issue.diagnostics}
        if issue.expression:
            entry["expression"] = [issue.expression]
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}


def information(text: str, code: str = "informational") -> dict:
    return operation_outcome([Issue("", text, code, "information")])
