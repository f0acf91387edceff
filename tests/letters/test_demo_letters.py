"""The demo's letters step on a reduced practice: past deliveries settled (a few failed for a person), reports
sent by the clinician with a login, drafts waiting for the signature, and working status links."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.test import Client
from django.utils import timezone
from faker import Faker

from refloop.demo import DemoContext, Scale, directory, frame, letters, referrals
from refloop.letters.models import ConsultReport, Delivery, DeliveryStatus, Letter, ReportStatus

pytestmark = pytest.mark.django_db

REDUCED = Scale("small", years=1, referring_providers=60, referring_practices=25, referrals=600, activities=0)


def test_the_demo_letters_are_what_the_recent_referrals_would_have_produced(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    fake = Faker("en_US")
    fake.seed_instance(5)
    ctx = DemoContext(seed=5, scale=REDUCED, rng=random.Random(5), fake=fake)
    ctx.objects["now"] = timezone.now()
    for step in (frame.build, directory.build, referrals.build, letters.build):
        step(ctx)

    assert Letter.objects.count() > 50
    statuses = set(Delivery.objects.values_list("status", flat=True))
    assert DeliveryStatus.FAILED in statuses and DeliveryStatus.SENT in statuses
    assert not Delivery.objects.filter(status__in=["sending", "retrying"]).exists()
    waiting = Delivery.objects.filter(status=DeliveryStatus.QUEUED)
    assert all(d.channel == "mail" for d in waiting)  # only the print queue waits
    assert Letter.objects.filter(created_at__lt=timezone.now() - dt.timedelta(days=7)).exists()  # back-dated
    assert ConsultReport.objects.filter(status=ReportStatus.SENT).exists()
    from refloop.referrals.models import Referral
    from refloop.referrals.workflow import State

    awaiting = Referral.objects.filter(state=State.SEEN, clinician__user__username="clinician").count()
    assert ConsultReport.objects.filter(status=ReportStatus.DRAFT).count() == min(4, awaiting)
    from django_tasks_db.models import DBTaskResult

    assert not DBTaskResult.objects.filter(task_path__startswith="refloop.letters.tasks.").exists()
    name, token = ctx.objects["status_links"][0]
    page = Client().get(f"/r/{token}/")
    assert page.status_code == 200 and name.encode() in page.content
