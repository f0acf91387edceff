"""`refloop scan`: one JSON object per alert with --format json, back-tests with --as-of that save nothing,
and clear errors for a bad date."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from refloop.insights.models import SourceAlert
from tests.insights.alert_history import AS_OF, network

pytestmark = pytest.mark.django_db


def _run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("scan", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_json_output_is_one_object_per_alert_naming_the_source_kind_since_and_rates():
    made = network()
    out, err = _run("--as-of", AS_OF.isoformat(), "--format", "json")
    alerts = [json.loads(line) for line in out.splitlines()]
    by_npi = {a["npi"]: a for a in alerts if "npi" in a}
    slipping = by_npi[made["slipping"].npi]
    assert slipping["kind"] == "slipping"
    assert dt.date.fromisoformat(slipping["since"]) < AS_OF
    assert slipping["recent_per_month"] < slipping["usual_per_month"]
    assert by_npi[made["dormant"].npi]["kind"] == "dormant"
    assert by_npi[made["rising"].npi]["kind"] == "rising"
    practices = {a["practice_id"]: a for a in alerts if "practice_id" in a}
    assert practices[made["slipping_practice"].pk]["kind"] == "slipping"
    assert not {p.npi for p in made["steady"]} & set(by_npi)
    assert "nothing saved" in err
    assert SourceAlert.objects.count() == 0  # a back-test writes nothing


def test_a_scan_of_today_saves_the_alerts():
    today = timezone.localdate()
    made = network(as_of=today)
    out, err = _run("--format", "text")
    assert "alerts opened 6" in err
    assert SourceAlert.objects.filter(as_of=today, resolved_at__isnull=True).count() == len(out.splitlines()) == 6
    assert SourceAlert.objects.get(provider=made["slipping"]).kind == "slipping"
    assert f"NPI {made['slipping'].npi}" in out


@pytest.mark.parametrize(
    ("value", "message"),
    [("2026-13-01", "not a date in the form YYYY-MM-DD"), ("2999-01-01", "is in the future")],
)
def test_a_bad_as_of_is_refused_by_name(value, message):
    with pytest.raises(CommandError, match=message) as caught:
        _run("--as-of", value)
    assert "--as-of" in str(caught.value)
    assert SourceAlert.objects.count() == 0


def test_a_practice_with_no_referrals_yet_gets_an_empty_scan():
    out, err = _run("--format", "json")
    assert out == ""
    assert "0 sources read" in err and "alerts opened 0" in err
