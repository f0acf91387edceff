"""Script payloads in every text field of the practice's records, and the pages that show them.

Used by tests/accounts/test_xss_escaping.py (the HTML never carries the payload as markup) and
tests/e2e/test_xss_payloads.py (a real browser runs none of it).
"""

from __future__ import annotations

from django.apps import apps
from django.db import models
from django.urls import reverse

PAYLOAD = "\"'><script>window.__xss=1</script><img src=x onerror=window.__xss=2><svg onload=window.__xss=3>"
# Markup that may appear only if escaping failed somewhere (the payload's own text, not the page's markup).
RAW_MARKERS = ("<script>window.__xss", "<img src=x onerror", "<svg onload=window")

# Not user-entered text, or text whose form the application checks and uses (an NPI with a check digit, a
# letter template that is HTML by design and edited only by managers, hashes, derived search keys).
_SKIP_FIELDS = {"password", "npi", "name_key", "token_hash", "key_hash", "hash", "prev_hash", "username", "state"}
_SKIP_MODELS = {"accounts.auditevent", "letters.lettertemplate", "letters.ratecounter", "interop.apikey"}


def _text_fields(model) -> list[models.Field]:
    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, (models.CharField, models.TextField))
        and not field.choices
        and not field.unique
        and not field.primary_key
        and field.name not in _SKIP_FIELDS
        and not field.name.endswith(("_hash", "_key", "_token", "_id"))
        and (field.max_length or 1000) >= 8
    ]


def plant(users) -> dict:
    """A referral network with a payload in every text field; returns the records the pages are about."""
    from refloop.practice.models import Practice
    from tests.outreach.factories import activity, office
    from tests.referrals.factories import referral

    where = office(physicians=1, staff=1, name="Payload Practice")
    doctor = where.physicians[0]
    item = referral(by=users["coordinator"], source=doctor)
    logged = activity(by=users["liaison"], practice=where.practice, providers=[doctor], purpose="lunch")
    from refloop.outreach import services as outreach_services

    concern = outreach_services.concern_open(practice=where.practice, summary="Slow reports", by=users["liaison"])
    Practice.objects.create(name="Lakeside", specialty="Orthopaedics")
    planted = 0
    for model in apps.get_models():
        if not model.__module__.startswith("refloop.") or model._meta.label_lower in _SKIP_MODELS:
            continue
        fields = _text_fields(model)
        if not fields:
            continue
        for pk in model._default_manager.values_list("pk", flat=True):
            # a row number in front keeps rows apart where a text field is part of a unique constraint
            values = {f.name: f"{pk}{PAYLOAD}"[: f.max_length or 1000] for f in fields}
            model._default_manager.filter(pk=pk).update(**values)
            planted += len(fields)
    get_user = apps.get_model("accounts", "User")
    get_user.objects.update(first_name=PAYLOAD[:150], last_name=PAYLOAD[:150])
    activity_obj = getattr(logged, "activity", logged)
    return {
        "referral": item,
        "provider": doctor,
        "practice": where.practice,
        "activity": activity_obj,
        "concern": concern,
        "planted": planted,
    }


def pages(records: dict) -> list[str]:
    """The pages a coordinator, liaison or manager reads these records on (all open to an administrator)."""
    return [
        reverse("referrals:home"),
        reverse("referrals:detail", args=[records["referral"].pk]),
        reverse("directory:home"),
        reverse("directory:provider", args=[records["provider"].pk]),
        reverse("directory:practices"),
        reverse("directory:practice", args=[records["practice"].pk]),
        reverse("directory:staff"),
        reverse("outreach:home"),
        reverse("outreach:activities"),
        reverse("outreach:activity", args=[records["activity"].pk]),
        reverse("outreach:concerns"),
        reverse("outreach:concern", args=[records["concern"].pk]),
        reverse("letters:home"),
        reverse("practice:settings"),
        reverse("accounts:account"),
        reverse("accounts:audit"),
        reverse("search") + "?q=script",
    ]
