"""`refloop hl7 listen --port N` as its own process: takes a referral over TCP and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from django_tasks_db.models import DBTaskResult

from refloop.interop.hl7.mllp import MllpClient, wait_for_port
from refloop.interop.hl7.tasks import hl7_inbound_drain
from refloop.referrals.models import Referral
from tests.interop.hl7_messages import ONC_OMG, ack_fields, reference_text
from tests.letters.conftest import ROOT, database_for_other_process, free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("processes", [1, 2])
def test_the_listener_command_takes_a_referral_and_stops_on_sigterm(reference_dir, tmp_path, processes):
    port = free_port()
    with database_for_other_process(tmp_path) as url:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
        env.update({"DATABASE_URL": url, "PYTHONPATH": str(ROOT)})
        command = [sys.executable, "-m", "refloop.cli", "hl7", "listen", "--port", str(port)]
        listener = subprocess.Popen(
            [*command, "--processes", str(processes)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_for_port("127.0.0.1", port, 60)
            with MllpClient("127.0.0.1", port, timeout=60) as client:
                answer = client.send(reference_text(reference_dir, ONC_OMG).encode()).decode()
        finally:
            listener.send_signal(signal.SIGTERM)
            output, _ = listener.communicate(timeout=60)

        assert listener.returncode == 0, output
        assert "HL7 MLLP listener stopped" in output

    assert ack_fields(answer)["MSA"][1:3] == ["AA", "17882"]
    # The listener queued the message and a drain for the worker; the worker's task makes the referral.
    drains = DBTaskResult.objects.ready().filter(task_path=hl7_inbound_drain.module_path)
    assert drains.count() == 1
    assert hl7_inbound_drain.call() == "1 referral message(s) accepted, 0 failed"
    assert Referral.objects.get().patient.last_name == "Packton"
