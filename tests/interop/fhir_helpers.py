"""Shared by tests/interop/test_fhir_*.py: the real FHIR artefacts of ../shared/reference/fhir as requests, API keys,
and a small reader of the FSH instances BSeR publishes (the repository holds FSH, not JSON).

Where a BSeR instance refers to one that the reference folder does not hold (the Patient, the PractitionerRoles,
the Coverage of Eve Everywoman), the builders below write a minimal stand-in with the id the instance uses, and
say so; every value the referral is checked against comes from the real artefacts.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from refloop.interop.apikeys import apikey_create
from refloop.lib.npi import make_npi
from tests.directory.factories import provider

NPI = "http://hl7.org/fhir/sid/us-npi"
FHIR_JSON = "application/fhir+json"
HENRY_SEVEN_NPI = make_npi("198765432")  # BSeR gives "Henry Seven, MD" no NPI: a valid one of ours

# FSH aliases used by the BSeR instances (from the BSeR repository's aliases file).
ALIASES = {
    "$sct": "http://snomed.info/sct",
    "$v2-0203": "http://terminology.hl7.org/CodeSystem/v2-0203",
    "$loinc": "http://loinc.org",
    "TaskBusinessStatusCS": "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS",
}
ARRAYS = {"identifier", "category", "reasonCode", "performer", "insurance", "supportingInfo", "entry", "output",
          "section", "author", "coding"}  # fmt: skip
CODEABLE = {"category", "code", "reasonCode", "type", "businessStatus"}
STEP = re.compile(r"^(?P<name>[A-Za-z]+)(?:\[(?P<index>[^\]]+)\])?$")
CODED = re.compile(r'^(?P<system>[$\w.-]*)#(?P<code>[\w.-]+)(?:\s+"(?P<display>[^"]*)")?$')


def fsh_instance(path: Path, instances: dict[str, dict] | None = None) -> dict:
    """The JSON of one FSH `Instance:`; `instances` supplies the resources an `entry[=].resource = name` names."""
    resource: dict = {}
    slices: dict[tuple[int, str], dict[str, int]] = {}
    last_index: dict[tuple[int, str], int] = {}
    for line in path.read_text().splitlines():
        if line.startswith("Instance:"):
            resource["id"] = line.split(":", 1)[1].strip()
        elif line.startswith("InstanceOf:"):
            profile = line.split(":", 1)[1].strip()
            kind = next(k for k in ("ServiceRequest", "Task", "Bundle", "Composition") if profile.endswith(k))
            resource = {"resourceType": kind, **resource}
        elif line.startswith("* "):
            target, _, value = line[2:].partition(" = ")
            _assign(resource, target.strip(), value.strip(), slices, last_index, instances or {})
    return resource


def _assign(resource, target, value, slices, last_index, instances) -> None:
    node = resource
    steps = target.split(".")
    for n, step in enumerate(steps):
        match = STEP.match(step)
        assert match, f"unreadable FSH path {target}"
        name, index = match["name"], match["index"]
        final = n == len(steps) - 1
        if name in ARRAYS:
            items = node.setdefault(name, [])
            key = (id(items), name)
            if index is None or index == "=":
                i = last_index.get(key, 0)
            elif index == "+":
                i = last_index.get(key, -1) + 1
            elif index.isdigit():
                i = int(index)
            else:  # a named slice: one element per slice name, in order of first use
                named = slices.setdefault(key, {})
                i = named.setdefault(index, len(named))
            last_index[key] = i
            while len(items) <= i:
                items.append({})
            if final:
                items[i] = _value(name, value, instances)
            else:
                node = items[i]
        elif final:
            node[name] = _value(name, value, instances)
        else:
            node = node.setdefault(name, {})


def _value(name, value, instances):
    if value.startswith('"'):
        return json.loads(value)
    coded = CODED.match(value)
    if coded:
        if not coded["system"]:
            return coded["code"]
        coding = {"system": ALIASES[coded["system"]], "code": coded["code"]}
        if coded["display"]:
            coding["display"] = coded["display"]
        return {"coding": [coding]} if name in CODEABLE else coding
    return copy.deepcopy(instances[value])  # `entry[=].resource = instance-name`


def load(reference_dir: Path, name: str) -> dict:
    return json.loads((reference_dir / "fhir" / name).read_text())


def api_key(*scopes: str, name: str = "") -> str:
    _, raw = apikey_create(name=name or f"ehr-{'-'.join(scopes) or 'none'}", scopes=list(scopes))
    return raw


def post(client, path: str, body, key: str | None = None, content_type: str = FHIR_JSON):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(path, data=data, content_type=content_type, **headers)


def get(client, path: str, key: str | None = None, **params):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.get(path, params, **headers)


# The real artefacts as referrals


def fielding_kathy():
    """The directory's record of US Core's practitioner-2 (NPI 1245319599).

    US Core's ServiceRequests name practitioner-1, whose NPI 9941339100 starts with 9: no NPI does, the directory
    cannot hold it, and intake refuses it (test_fhir_malformed_refused). The builders below send practitioner-2
    as the requester instead; every other resource is verbatim.
    """
    return provider(first_name="Fielding", last_name="Kathy", npi="1245319599", city="Amherst", state="MA",
                    postal_code="01002")  # fmt: skip


def henry_seven():
    return provider(first_name="Henry", last_name="Seven", npi=HENRY_SEVEN_NPI, city="Atlanta", state="GA",
                    postal_code="30303")  # fmt: skip


def us_core_transaction(reference_dir: Path, request: str, practitioner: str = "practitioner-2") -> dict:
    """A US Core ServiceRequest sent with the Patient, Practitioner and Organization it refers to."""
    sr = load(reference_dir, f"us-core/{request}")
    sr["requester"]["reference"] = f"Practitioner/{practitioner}"
    parts = [sr, load(reference_dir, "us-core/patient-example.json"),
             load(reference_dir, f"us-core/{practitioner}.json"),
             load(reference_dir, "us-core/organization-holy-healthcare.json")]  # fmt: skip
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r,
             "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in parts
        ],  # fmt: skip
    }


def us_core_contained(reference_dir: Path, request: str, practitioner_name: str = "practitioner-2") -> dict:
    """A US Core ServiceRequest POSTed alone, its Patient and Practitioner contained (both verbatim otherwise)."""
    sr = load(reference_dir, f"us-core/{request}")
    patient = load(reference_dir, "us-core/patient-example.json")
    practitioner = load(reference_dir, f"us-core/{practitioner_name}.json")
    for resource in (patient, practitioner):
        resource.pop("meta", None)
    sr["contained"] = [patient, practitioner]
    sr["subject"]["reference"] = "#example"
    sr["requester"]["reference"] = f"#{practitioner_name}"
    return sr


def eve_everywoman(pid: str) -> dict:
    """Stand-in for BSeR's Patient Eve Everywoman (the instance is not in the reference folder)."""
    return {"resourceType": "Patient", "id": pid, "name": [{"use": "official", "family": "Everywoman",
            "given": ["Eve"]}], "gender": "female", "birthDate": "1955-07-23",
            "address": [{"use": "home", "line": ["2222 Home Street"], "city": "Ann Arbor", "state": "MI",
                         "postalCode": "99999"}]}  # fmt: skip


def _initiator(pid: str, npi: str) -> dict:
    return {"resourceType": "PractitionerRole", "id": pid,
            "practitioner": {"identifier": {"system": NPI, "value": npi}, "display": "Henry Seven, MD"}}  # fmt: skip


def _coverage(pid: str, patient_ref: str) -> dict:
    return {"resourceType": "Coverage", "id": pid, "status": "active", "subscriberId": "AB12345",
            "beneficiary": {"reference": patient_ref}, "payor": [{"display": "Blue Lake Health Plan"}],
            "class": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                            "code": "plan"}]}, "value": "GOLD-1", "name": "Gold PPO"}]}  # fmt: skip


def bser_transaction(reference_dir: Path, fsh: str, npi: str = HENRY_SEVEN_NPI) -> dict:
    """A BSeR ServiceRequest (from its FSH, verbatim) with stand-ins for the instances it refers to."""
    sr = fsh_instance(reference_dir / "fhir" / "bser" / fsh)
    patient = eve_everywoman("patient-us-core-patient-eve-everywoman")
    role = _initiator("practitionerrole-us-core-practitionerrole-referral-initiator", npi)
    coverage = _coverage("coverage-bser-coverage-eve-everywoman", "Patient/patient-us-core-patient-eve-everywoman")
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r,
                   "request": {"method": "POST", "url": r["resourceType"]}}
                  for r in (sr, patient, role, coverage)],  # fmt: skip
    }


def bser_message(reference_dir: Path, npi: str = HENRY_SEVEN_NPI) -> dict:
    """BSeR's referral message Bundle (its FSH, verbatim), the instances it lists but the folder lacks stood in."""
    bser = reference_dir / "fhir" / "bser"
    instances = {
        "servicerequest-bser-referral-servicerequest-arthritis": fsh_instance(
            bser / "servicerequest-bser-referral-servicerequest-arthritis.fsh"
        ),
        "task-bser-referral-task": fsh_instance(bser / "task-bser-referraltask.fsh"),
        "messageheader-bser-referral-messageheader": {
            "resourceType": "MessageHeader", "id": "messageheader-bser-referral-messageheader",
            "eventCoding": {"system": "http://hl7.org/fhir/us/bser/CodeSystem/bser-message-events",
                            "code": "bser-referral-request"},
            "source": {"endpoint": "http://example.org/fhir"}},  # fmt: skip
        "patient-bser-patient-eve-everywoman": eve_everywoman("patient-bser-patient-eve-everywoman"),
        "practitionerrole-us-core-practitionerrole-referral-initiator": _initiator(
            "practitionerrole-us-core-practitionerrole-referral-initiator", npi
        ),
        "practitionerrole-us-core-practitionerrole-referral-recipient": {
            "resourceType": "PractitionerRole", "id": "practitionerrole-us-core-practitionerrole-referral-recipient",
            "practitioner": {"display": "Hailey Eight, MD"}},  # fmt: skip
        "organization-us-core-organization-saint-luke": {
            "resourceType": "Organization", "id": "organization-us-core-organization-saint-luke",
            "name": "Saint Luke W Endocrinology Associates"},  # fmt: skip
        "coverage-bser-coverage-eve-everywoman": _coverage(
            "coverage-bser-coverage-eve-everywoman", "Patient/patient-bser-patient-eve-everywoman"
        ),
        "bundle-bser-referral-request-document-bundle-eve-everywoman": {
            "resourceType": "Bundle", "id": "bundle-bser-referral-request-document-bundle-eve-everywoman",
            "type": "document"},  # fmt: skip
        "consent-bser-patientconsent-eve-everywoman": {
            "resourceType": "Consent", "id": "consent-bser-patientconsent-eve-everywoman", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}]},  # fmt: skip
    }
    return fsh_instance(bser / "bundle-bser-referral-message-bundle-eve-everywoman.fsh", instances)
