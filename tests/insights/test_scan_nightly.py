"""The nightly scan: the worker queues it once, it runs the scan and saves the alerts, then queues tomorrow's run."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from refloop.insights.models import SourceAlert
from refloop.insights.scan import SCAN_HOUR, alert_scan_nightly, alert_scan_schedule, next_scan_at
from tests.insights.alert_history import network

pytestmark = pytest.mark.django_db
TASK = alert_scan_nightly.module_path


def test_the_next_run_is_the_coming_night():
    tz = timezone.get_current_timezone()
    evening = dt.datetime(2026, 3, 4, 22, 15, tzinfo=tz)
    assert next_scan_at(evening) == dt.datetime(2026, 3, 5, SCAN_HOUR, tzinfo=tz)
    early = dt.datetime(2026, 3, 4, 0, 30, tzinfo=tz)
    assert next_scan_at(early) == dt.datetime(2026, 3, 4, SCAN_HOUR, tzinfo=tz)


def test_it_is_queued_once_however_often_the_worker_starts():
    assert alert_scan_schedule() is True
    assert alert_scan_schedule() is False
    queued = DBTaskResult.objects.get(task_path=TASK, status="READY")
    assert queued.run_after > timezone.now()


@pytest.mark.django_db(transaction=True)  # the worker closes its connection, as it does in production
def test_the_worker_queues_it_at_start():
    from django.core.management import call_command

    call_command("worker", batch=True, interval=0, verbosity=0)
    assert DBTaskResult.objects.filter(task_path=TASK, status="READY").count() == 1


def test_a_nightly_run_saves_the_alerts_and_queues_the_next_night():
    network(as_of=timezone.localdate())
    summary = alert_scan_nightly.call()
    assert "opened" in summary
    assert SourceAlert.objects.filter(as_of=timezone.localdate(), resolved_at__isnull=True).count() == 6
    assert DBTaskResult.objects.filter(task_path=TASK, status="READY").count() == 1
