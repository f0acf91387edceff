"""The MLLP listener over real TCP: referrals in, an ACK for each, a malformed one refused, a resend recognised;
then the worker's drain task makes the referrals of the messages the listener queued."""

from __future__ import annotations

import socket

import pytest

from refloop.interop.hl7.mllp import MllpClient, MllpServer
from refloop.interop.hl7.tasks import hl7_inbound_drain
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral
from tests.interop.hl7_messages import HAPI_REF, ONC_OMG, ack_fields, reference_text, set_field

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener():
    server = MllpServer("127.0.0.1", 0)
    server.start_in_thread()
    yield server
    server.stop()


def test_referrals_malformed_and_resent_messages_on_one_connection(listener, reference_dir):
    omg = reference_text(reference_dir, ONC_OMG)
    broken = set_field(set_field(omg, "MSH", 10, "17990"), "PID", 7, "19581317")

    with MllpClient("127.0.0.1", listener.port, timeout=30) as client:
        first = client.send(omg.encode()).decode()
        refused = client.send(broken.encode()).decode()
        resent = client.send(omg.encode()).decode()
        hapi = client.send(reference_text(reference_dir, HAPI_REF).encode()).decode()

    assert ack_fields(first)["MSA"][1:3] == ["AA", "17882"]
    assert ack_fields(refused)["MSA"][1:3] == ["AE", "17990"]
    assert ack_fields(refused)["ERR"][2] == "PID^1^7^1"
    assert resent == first  # the original ACK, byte for byte
    assert ack_fields(hapi)["MSA"][1] == "AA"
    statuses = dict(InterfaceMessage.objects.values_list("control_id", "status").exclude(control_id=""))
    assert statuses == {"17882": "queued", "17990": "rejected"}  # answered AA, the referral is the worker's
    assert not Referral.objects.exists()

    assert hl7_inbound_drain.call() == "2 referral message(s) accepted, 0 failed"

    assert Referral.objects.count() == 2
    assert set(Referral.objects.values_list("patient__last_name", flat=True)) == {"Packton", "aaa"}
    statuses = dict(InterfaceMessage.objects.values_list("control_id", "status").exclude(control_id=""))
    assert statuses == {"17882": "accepted", "17990": "rejected"}
    assert InterfaceMessage.objects.get(control_id="17882").attempts == 2


def test_several_senders_at_once_each_get_their_answers(listener, reference_dir):
    omg = reference_text(reference_dir, ONC_OMG)
    clients = [MllpClient("127.0.0.1", listener.port, timeout=30) for _ in range(3)]
    try:
        answers = []
        for n in range(4):
            for c, client in enumerate(clients):
                text = set_field(set_field(omg, "MSH", 10, f"C{c}-{n}"), "ORC", 2, f"P{c}-{n}")
                answers.append((f"C{c}-{n}", client.send(text.encode()).decode()))
    finally:
        for client in clients:
            client.close()

    assert all(ack_fields(a)["MSA"][1:3] == ["AA", cid] for cid, a in answers)
    hl7_inbound_drain.call()
    assert Referral.objects.count() == 12


def test_bytes_outside_frames_are_ignored_and_a_split_frame_is_joined(listener, reference_dir):
    payload = reference_text(reference_dir, ONC_OMG).encode()
    with socket.create_connection(("127.0.0.1", listener.port), timeout=30) as sock:
        sock.sendall(b"\r\n\x0b" + payload[:40])
        sock.sendall(payload[40:] + b"\x1c\r")
        answer = b""
        while not answer.endswith(b"\x1c\r"):
            answer += sock.recv(4096)

    assert answer.startswith(b"\x0bMSH|")
    assert ack_fields(answer[1:-2].decode())["MSA"][1] == "AA"
    hl7_inbound_drain.call()
    assert Referral.objects.count() == 1
