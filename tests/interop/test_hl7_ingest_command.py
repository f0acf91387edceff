"""`refloop hl7 ingest FILE...` prints each message's ACK and fails when any message was not accepted."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from refloop.referrals.models import Referral
from tests.interop.hl7_messages import HAPI_REF, ONC_OMG, reference_text, set_field

pytestmark = pytest.mark.django_db


def ingest(*paths) -> str:
    out = StringIO()
    call_command("hl7", "ingest", *map(str, paths), stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_reference_files_are_ingested_with_an_aa_each(reference_dir):
    output = ingest(reference_dir / HAPI_REF, reference_dir / ONC_OMG)

    assert output.count("MSA|AA|") == 2
    assert output.count(": AA") == 2
    assert Referral.objects.count() == 2


def test_a_file_of_several_messages_is_split_on_msh(reference_dir, tmp_path):
    omg = reference_text(reference_dir, ONC_OMG)
    second = set_field(set_field(omg, "MSH", 10, "17883"), "ORC", 2, "889343")
    path = tmp_path / "batch.hl7"
    path.write_bytes(f"FHS|^~\\&\rBHS|^~\\&\r{omg}{second}BTS|2\rFTS|1\r".encode())

    output = ingest(path)

    assert "message 1: AA" in output and "message 2: AA" in output
    assert Referral.objects.count() == 2


def test_a_refused_message_makes_the_command_fail_after_the_others(reference_dir, tmp_path):
    bad = tmp_path / "bad.hl7"
    bad.write_bytes(set_field(reference_text(reference_dir, ONC_OMG), "PID", 5, "").encode())
    out = StringIO()

    with pytest.raises(CommandError, match="1 of 2 message") as failure:
        call_command("hl7", "ingest", str(bad), str(reference_dir / HAPI_REF), stdout=out, stderr=StringIO())

    assert failure.value.returncode == 1
    assert "MSA|AE|17882" in out.getvalue()
    assert "ERR||PID^1^5^1^1|101" in out.getvalue()
    assert Referral.objects.count() == 1  # the good file was still taken


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError, match="nothere.hl7"):
        ingest(tmp_path / "nothere.hl7")
