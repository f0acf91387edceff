"""An independent FHIR R4 validator (medplum's validateResource, run by node from tests/interop/medplum) accepts
the CapabilityStatement, Tasks, DocumentReference, ServiceRequest and Bundles refloop produces.

`make test` runs `npm ci` there first. Without node or the installed validator the test fails under CI=true
(a green CI must mean the check ran) and is skipped on a developer's machine with the command that fixes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from refloop.referrals.services import referral_transition
from tests.interop.fhir_helpers import api_key, bser_message, get, henry_seven, post
from tests.interop.test_fhir_task_follows_the_loop import _sent_report, schedule
from tests.referrals.factories import referral

pytestmark = pytest.mark.django_db

HERE = Path(__file__).resolve().parent / "medplum"


def _missing(why: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the FHIR validator cannot run under CI: {why}")
    pytest.skip(f"{why} (run `make test`, or `npm ci` in {HERE})")


def validate(resources: list[dict]) -> list[dict]:
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (HERE / "node_modules" / "@medplum" / "core").is_dir():
        _missing("the validator's packages are not installed")
    result = subprocess.run([node, "validate.mjs"], input=json.dumps(resources), cwd=HERE, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_the_validator_refuses_a_broken_resource():
    broken = {"resourceType": "Task", "status": "requested", "intent": "order", "focus": "ServiceRequest/1"}
    results = validate([broken])
    assert results[0]["ok"] is False and results[0]["issues"]


def test_what_refloop_produces_is_valid_r4(client, users, reference_dir):
    key = api_key("referrals.view", "referrals.edit", "letters.view")
    by = users["coordinator"]
    received = referral(by=by)
    declined = referral_transition(referral=referral(by=by), name="decline", by=by, data={"reason": "Out of scope"})
    accepted = referral_transition(referral=referral(by=by), name="accept", by=by)
    scheduled = schedule(accepted, by)
    completed, report = _sent_report(users)
    henry_seven()
    produced = {
        "CapabilityStatement": get(client, "/fhir/metadata").json(),
        "Task received": get(client, f"/fhir/Task/{received.pk}", key).json(),
        "Task declined": get(client, f"/fhir/Task/{declined.pk}", key).json(),
        "Task scheduled": get(client, f"/fhir/Task/{scheduled.pk}", key).json(),
        "Task completed": get(client, f"/fhir/Task/{completed.pk}", key).json(),
        "DocumentReference": get(client, f"/fhir/DocumentReference/{report.pk}", key).json(),
        "ServiceRequest": get(client, f"/fhir/ServiceRequest/{completed.pk}", key).json(),
        "searchset": get(client, "/fhir/Task", key).json(),
        "message response": post(client, "/fhir/Bundle", bser_message(reference_dir), key).json(),
        "OperationOutcome": get(client, "/fhir/Task/0", key).json(),
    }
    assert produced["Task completed"]["output"][0]["valueReference"]["reference"] == f"DocumentReference/{report.pk}"
    results = dict(zip(produced, validate(list(produced.values())), strict=True))
    problems = {name: result["issues"] for name, result in results.items() if not result["ok"]}
    assert problems == {}
