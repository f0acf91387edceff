"""The letters panel on the referral page: the report clock, the consult reports, and each letter's delivery."""

from __future__ import annotations

from django import template

from refloop.letters import selectors
from refloop.letters.models import ConsultReport, Letter
from refloop.referrals.workflow import State

register = template.Library()

REPORT_STATES = {State.SEEN, State.REPORT_SENT, State.CLOSED}


@register.inclusion_tag("letters/_referral_panel.html", takes_context=True)
def referral_letters_panel(context) -> dict:
    referral = context.get("referral")
    request = context.get("request")
    user = getattr(request, "user", None)
    if referral is None or not getattr(user, "is_authenticated", False) or not user.can("letters.view"):
        return {"show": False}
    letters = list(
        Letter.objects.filter(referral=referral).prefetch_related("deliveries").order_by("-created_at", "-pk")
    )
    reports = list(ConsultReport.objects.filter(referral=referral).select_related("clinician"))
    return {
        "show": True,
        "referral": referral,
        "clock": selectors.report_clock(referral),
        "letters": letters,
        "reports": reports,
        "can_write_report": user.can("reports.write")
        and referral.seen_at is not None
        and referral.state in REPORT_STATES,
        "can_send": user.can("letters.send"),
    }
