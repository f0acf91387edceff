"""Electronic referrals that wait for a person, and the log of messages exchanged with other systems.

A FHIR referral whose requester the directory does not hold by NPI waits with status "review": nothing is created
until someone adds the referring provider (the page links to the directory's form, filled in from the message) and
tries it again. An HL7 message that was acknowledged and then could not be made a referral waits as "failed" until
someone queues it again once the cause is fixed (`refloop hl7 requeue-failed` does the same for all of them). The
list shows no message body; for the messages waiting for review it shows the patient's name and birth date as sent
(to recognise the referral when its office calls) and records that read in the audit trail.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.interop.fhir.intake import fhir_review_retry, fhir_review_summary
from refloop.interop.hl7.inbound import inbound_requeue_failed
from refloop.interop.models import WAITING_STATUSES, InterfaceMessage

Status, Protocol, Direction = InterfaceMessage.Status, InterfaceMessage.Protocol, InterfaceMessage.Direction
PAGE_SIZE = 50
SHOW = {"waiting": "Waiting for a person", "all": "All messages"}


@require_action("interop.review")
def message_list(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show") if request.GET.get("show") in SHOW else "waiting"
    protocol = request.GET.get("protocol") if request.GET.get("protocol") in Protocol.values else ""
    rows = InterfaceMessage.objects.select_related("referral").defer("payload", "response")
    if show == "waiting":
        rows = rows.filter(direction=Direction.INBOUND, status__in=WAITING_STATUSES)
    if protocol:
        rows = rows.filter(protocol=protocol)
    page = Paginator(rows.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    review = [m for m in shown if m.protocol == Protocol.FHIR and m.status == Status.REVIEW]
    # Only these rows' payloads are read (the rest stay deferred): one query, not one per row.
    payloads = dict(InterfaceMessage.objects.filter(pk__in=[m.pk for m in review]).values_list("pk", "payload"))
    summaries = {}
    for message in review:
        message.payload = payloads[message.pk]
        summaries[message.pk] = _with_directory_links(fhir_review_summary(message))
    for message in shown:
        message.waiting = summaries.get(message.pk, [])
        message.retry = _retry_label(message)
    # The review rows name patients as sent: one record per page shown, naming the messages on it.
    audit_record(
        actor=request.user,
        action="interop.messages.view",
        detail={"show": show, "protocol": protocol, "page_number": page.number, "messages": [m.pk for m in shown],
                "patients_shown": sorted(summaries)},
    )  # fmt: skip
    query = {"show": show, "protocol": protocol}
    context = {
        "page": page,
        "show": show,
        "protocol": protocol,
        "shows": SHOW.items(),
        "protocols": Protocol.choices,
        "querystring": urlencode({k: v for k, v in query.items() if v}),
    }
    return render(request, "interop/messages.html", context)


def _retry_label(message: InterfaceMessage) -> str:
    if message.direction != Direction.INBOUND:
        return ""
    if message.protocol == Protocol.FHIR and message.status == Status.REVIEW:
        return "Try again"
    if message.protocol == Protocol.HL7V2 and message.status == Status.FAILED:
        return "Queue again"
    return ""


def _with_directory_links(waiting):
    for item in waiting:
        item.add_url = ""
        if item.requester_npi:
            prefill = {"npi": item.requester_npi, **item.requester}
            if item.requester.get("direct_address"):
                prefill["report_channel"] = "direct"  # the office gave a Direct address: reports go there
            prefill["next"] = reverse("interfaces:messages")
            item.add_url = reverse("directory:provider_new") + "?" + urlencode({k: v for k, v in prefill.items() if v})
    return waiting


@require_POST
@require_action("interop.review")
def message_retry(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(InterfaceMessage.objects.defer("response"), pk=message_id)
    label = _retry_label(message)
    back = reverse("interfaces:messages") + _back_query(request)
    if not label:
        messages.error(request, f"Message {message.pk} is {message.get_status_display().lower()}: nothing to retry.")
        return redirect(back)
    audit_record(actor=request.user, action="interop.message.retry", target=message)
    if message.protocol == Protocol.HL7V2:
        inbound_requeue_failed([message.pk])
        messages.success(request, f"Message {message.control_id or message.pk} is queued again for the worker.")
        return redirect(back)
    answer = fhir_review_retry(message=message, by=request.user)
    message.refresh_from_db(fields=["status", "referral", "detail"])
    if message.status == Status.ACCEPTED and message.referral_id:
        messages.success(request, f"Referral {message.referral_id} created from message {message.pk}.")
        return redirect("referrals:detail", referral_id=message.referral_id)
    if answer.status == 202:
        messages.warning(request, f"Message {message.pk} still waits: {message.detail}")
    else:
        messages.error(request, f"Message {message.pk} was refused ({answer.status}): {message.detail}")
    return redirect(back)


def _back_query(request: HttpRequest) -> str:
    kept = {k: request.POST.get(k, "") for k in ("show", "protocol", "page")}
    kept = {k: v for k, v in kept.items() if v and v.replace("_", "").isalnum()}
    return "?" + urlencode(kept) if kept else ""
