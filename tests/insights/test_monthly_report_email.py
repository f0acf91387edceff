"""The monthly report by email: a manager opts in on the page, the worker sends last month's PDF through a real
SMTP server on loopback, once per person per month, and queues next month's run."""

from __future__ import annotations

import datetime as dt

import pytest
from aiosmtpd.controller import Controller
from django_tasks_db.models import DBTaskResult

from refloop.accounts.models import AuditEvent
from refloop.insights.models import MonthlyReportDelivery, MonthlyReportRecipient
from refloop.insights.monthly_report import monthly_report_send, next_send_at
from tests.insights.effectiveness_data import office, referrals_on
from tests.letters.conftest import Inbox, free_port, run_worker

pytestmark = pytest.mark.django_db(transaction=True)
TASK = "refloop.insights.monthly_report.monthly_report_send"


@pytest.fixture
def inbox(settings):
    box = Inbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.DEFAULT_FROM_EMAIL = "reports@riverside-ortho.example"
    yield box
    box.release.set()
    controller.stop()


def test_a_manager_opts_in_and_the_worker_sends_the_month_once(users, client_as, inbox):
    manager = users["manager"]
    manager.email = "lee.manager@riverside-ortho.example"
    manager.save()
    referrals_on(office(), [dt.date(2026, 5, 4)] * 3)

    response = client_as("manager").post("/insights/reports/email/", {"action": "subscribe"})

    assert response.status_code == 302
    assert MonthlyReportRecipient.objects.filter(user=manager).exists()
    queued = DBTaskResult.objects.get(task_path=TASK, status="READY")
    assert queued.run_after == next_send_at()
    assert AuditEvent.objects.filter(actor=manager, action="insights.monthly_email").count() == 1

    monthly_report_send.enqueue(2026, 5)
    run_worker()
    assert len(inbox.messages) == 1
    recipients, message = inbox.messages[0]
    assert recipients == ["lee.manager@riverside-ortho.example"]
    assert message["Subject"] == "Referral report for May 2026"
    [attachment] = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert attachment.get_filename() == "refloop-monthly-report-2026-05.pdf"
    assert attachment.get_payload(decode=True).startswith(b"%PDF-")
    delivery = MonthlyReportDelivery.objects.get()
    assert (delivery.month, delivery.user, delivery.address) == (dt.date(2026, 5, 1), manager, manager.email)

    monthly_report_send.enqueue(2026, 5)  # a second run of the same month (a retry, another worker)
    run_worker()
    assert len(inbox.messages) == 1 and MonthlyReportDelivery.objects.count() == 1
    assert DBTaskResult.objects.filter(task_path=TASK, status="READY").count() == 1  # next month's, queued once


def test_a_refused_address_is_not_marked_sent_and_is_tried_again(users, inbox):
    manager = users["manager"]
    manager.email = "lee.manager@riverside-ortho.example"
    manager.save()
    MonthlyReportRecipient.objects.create(user=manager)
    inbox.refuse_rcpt = "550 5.1.1 No such mailbox"

    monthly_report_send.enqueue(2026, 5)
    run_worker()

    assert MonthlyReportDelivery.objects.count() == 0
    retry = DBTaskResult.objects.filter(task_path=TASK, status="READY").order_by("run_after").first()
    assert retry.args_kwargs["args"] == [2026, 5, 1]


def test_opting_out_stops_the_email_and_an_account_without_address_cannot_opt_in(users, client_as, inbox):
    client = client_as("manager")
    page = client.post("/insights/reports/email/", {"action": "subscribe"}, follow=True)
    assert "no email address" in page.content.decode()
    assert not MonthlyReportRecipient.objects.exists()

    manager = users["manager"]
    manager.email = "lee.manager@riverside-ortho.example"
    manager.save()
    client.post("/insights/reports/email/", {"action": "subscribe"})
    client.post("/insights/reports/email/", {"action": "unsubscribe"})
    assert not MonthlyReportRecipient.objects.exists()
    assert client.post("/insights/reports/email/", {"action": "maybe"}).status_code == 400

    monthly_report_send.enqueue(2026, 5)
    run_worker()
    assert inbox.messages == []


def test_a_liaison_cannot_opt_in(client_as):
    assert client_as("liaison").post("/insights/reports/email/", {"action": "subscribe"}).status_code == 403
    assert not MonthlyReportRecipient.objects.exists()
