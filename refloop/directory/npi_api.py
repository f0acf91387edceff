"""Importing an NPI Registry API answer (npiregistry.cms.hhs.gov/api, version 2.1) saved as a JSON file.

A coordinator who looks one provider up in the registry gets the same record the monthly file would give,
so this goes through the NPPES import's checks and upsert (nppes.py) and follows its ownership rules. The
API names taxonomies itself; its description wins over refloop's own table (taxonomy.describe).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.db import transaction

from refloop.directory import taxonomy
from refloop.directory.models import Source
from refloop.directory.nppes import (
    MAX_REJECTS_SHOWN,
    EntryBatch,
    ImportRefused,
    ImportReport,
    RegistryEntry,
    RejectedRow,
    RowProblem,
    TaxonomyFacts,
    audit_import,
    check_control_characters,
    check_npi,
    clean,
    deactivation_fields,
    format_phone,
    format_postal_code,
    practice_entry,
    provider_entry,
    us_state,
)

# One API answer holds at most 200 results (well under a megabyte); a file far larger is something else.
MAX_BYTES = 64 * 1024 * 1024


def npi_api_import(*, path: Path | str) -> ImportReport:
    """Upsert every result of one saved API answer; a result that cannot be imported is reported only."""
    path = Path(path)
    results = load_results(path)
    report = ImportReport(source=Source.NPI_API, read=len(results), matched=len(results))
    with transaction.atomic():
        batch = EntryBatch(source=Source.NPI_API, report=report)
        for position, result in enumerate(results, start=1):
            try:
                entry = entry_from_result(result)
            except RowProblem as problem:
                report.rejected += 1
                if len(report.rejects) < MAX_REJECTS_SHOWN:
                    report.rejects.append(RejectedRow(f"result {position}", str(problem), order=position))
            else:
                batch.add(entry)
        batch.flush()
        audit_import(report)
    return report


def load_results(path: Path) -> list[Any]:
    """The `results` list of an API answer; ImportRefused, in one sentence, for anything else."""
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    if path.stat().st_size > MAX_BYTES:
        raise ImportRefused(
            f"{path.name} is larger than {MAX_BYTES >> 20} MiB: not an NPI Registry API answer"
        )
    try:
        answer = json.loads(path.read_bytes())
    except UnicodeDecodeError:
        raise ImportRefused(f"{path.name} is not UTF-8 text: not an NPI Registry API answer") from None
    except json.JSONDecodeError as error:
        raise ImportRefused(
            f"{path.name} is not JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(answer, dict):
        raise ImportRefused(
            f"{path.name}: expected a JSON object with 'results', found a {type(answer).__name__}"
        )
    if "Errors" in answer:
        errors = answer["Errors"] if isinstance(answer["Errors"], list) else [answer["Errors"]]
        said = "; ".join(clean(e.get("description")) if isinstance(e, dict) else clean(e) for e in errors)
        raise ImportRefused(
            f"{path.name}: the NPI Registry answered with an error, not results: {said[:200]}"
        )
    results = answer.get("results")
    if not isinstance(results, list):
        raise ImportRefused(f"{path.name} has no 'results' list: it is not an NPI Registry API answer")
    return results


def _api_date(value: Any, name: str, npi: str) -> date | None:
    text = clean(value)
    if not text:
        return None
    for pattern in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise RowProblem(f"NPI {npi}: {name} {text[:12]!r} is not a date")


def _text(value: Any) -> str:
    """The API writes "--" for a name part that is not there."""
    text = clean(value)
    return "" if text == "--" else text


def _mapping(value: Any, name: str, npi: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RowProblem(f"NPI {npi}: {name} is not an object")
    return value


def _list_of_mappings(value: Any, name: str, npi: str) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise RowProblem(f"NPI {npi}: {name} is not a list of objects")
    return value


def entry_from_result(result: Any) -> RegistryEntry:
    """One API result as a RegistryEntry, checked like a row of the NPPES file."""
    if not isinstance(result, dict):
        raise RowProblem("the result is not an object")
    npi = clean(result.get("number"))
    check_control_characters({"number": npi}, npi=npi)
    check_npi(npi)
    kind = clean(result.get("enumeration_type")).upper()
    if kind not in ("NPI-1", "NPI-2"):
        raise RowProblem(f"NPI {npi}: enumeration_type {kind[:10]!r} is neither NPI-1 nor NPI-2")
    basic = _mapping(result.get("basic"), "basic", npi)
    addresses = _list_of_mappings(result.get("addresses"), "addresses", npi)
    location = next((a for a in addresses if clean(a.get("address_purpose")).upper() == "LOCATION"), {})
    found = {f"basic.{key}": _text(value) for key, value in basic.items() if isinstance(value, str)}
    found |= {f"addresses.{key}": clean(value) for key, value in location.items() if isinstance(value, str)}
    check_control_characters(found, npi=npi)
    status = deactivation_fields(
        _api_date(basic.get("deactivation_date"), "deactivation_date", npi),
        _api_date(basic.get("reactivation_date"), "reactivation_date", npi),
    )
    if clean(basic.get("status")).upper() == "D" and status["is_active"]:
        status["is_active"] = False
    country = clean(location.get("country_code")).upper()
    address = {
        "address_line1": clean(location.get("address_1")),
        "address_line2": clean(location.get("address_2")),
        "city": clean(location.get("city")),
        "state": us_state(clean(location.get("state")), country, npi=npi),
        "postal_code": format_postal_code(clean(location.get("postal_code"))),
        "phone": format_phone(clean(location.get("telephone_number"))),
        "fax": format_phone(clean(location.get("fax_number"))),
    }
    if kind == "NPI-2":
        name = _text(basic.get("organization_name")) or _text(basic.get("name"))
        return practice_entry(npi=npi, name=name, address=address, status=status)
    names = {
        "first_name": _text(basic.get("first_name")),
        "middle_name": _text(basic.get("middle_name")),
        "last_name": _text(basic.get("last_name")),
        "name_prefix": _text(basic.get("name_prefix")),
        "name_suffix": _text(basic.get("name_suffix")),
        "credentials": _text(basic.get("credential")),
    }
    facts = []
    for item in _list_of_mappings(result.get("taxonomies"), "taxonomies", npi):
        code = clean(item.get("code")).upper()
        if not code:
            continue
        values = {"code": code, "desc": clean(item.get("desc")), "license": clean(item.get("license"))}
        check_control_characters({f"taxonomies.{k}": v for k, v in values.items()}, npi=npi)
        facts.append(
            TaxonomyFacts(
                code=code,
                description=(values["desc"] or taxonomy.describe(code))[:200],
                is_primary=item.get("primary") is True or clean(item.get("primary")).lower() == "true",
                license_number=values["license"],
                license_state=clean(item.get("state")).upper(),
            )
        )
    return provider_entry(npi=npi, names=names, address=address, taxonomies=facts, status=status)
