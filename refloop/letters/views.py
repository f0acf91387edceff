"""Staff pages for letters: the delivery queues (failed ones first), the print-and-mail batch, letters written
from a referral, templates with a live preview, which steps send what, and the offices' status links.

A letter holds PHI: opening one, or its PDF, is written to the audit trail like opening the referral.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.directory.models import ReferringPractice
from refloop.letters import context as letter_context
from refloop.letters import rendering, services
from refloop.letters.forms import LetterForm, RedirectForm, RuleAddForm, TemplateForm, office_token
from refloop.letters.models import Delivery, Letter, LetterRule, LetterTemplate, StatusLink
from refloop.lib import stale
from refloop.referrals.models import Referral

PAGE_SIZE = 50
QUEUES = [
    ("failed", "Failed: needs a person", lambda qs: qs.failed()),
    ("waiting", "Queued and retrying", lambda qs: qs.waiting()),
    ("print", "Print and mail", lambda qs: qs.print_queue()),
    ("sent", "Sent", lambda qs: qs.done()),
]


def _queue_counts() -> dict[str, int]:
    return {key: pick(Delivery.objects.all()).count() for key, _, pick in QUEUES}


@require_GET
@require_action("letters.view")
def home(request: HttpRequest) -> HttpResponse:
    queue = request.GET.get("queue", "failed")
    chosen = next((q for q in QUEUES if q[0] == queue), QUEUES[0])
    rows = chosen[2](
        Delivery.objects.select_related("letter__referral__patient", "letter__provider", "letter__patient")
    )
    page = Paginator(rows.order_by("-updated_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    counts = _queue_counts()
    # The rows name patients: one audit record for the page, with the letters' referrals it showed.
    audit_record(
        actor=request.user,
        action="letters.delivery.list",
        detail={
            "queue": chosen[0],
            "page_number": page.number,
            "deliveries": [d.pk for d in page.object_list],
            "referrals": sorted({d.letter.referral_id for d in page.object_list if d.letter.referral_id}),
        },
    )
    context = {
        "queue": chosen[0],
        "tabs": [(key, label, counts[key]) for key, label, _ in QUEUES],
        "page": page,
        "section": "deliveries",
    }
    return render(request, "letters/home.html", context)


def _get_delivery(delivery_id: int) -> Delivery:
    return get_object_or_404(
        Delivery.objects.select_related("letter__referral__patient", "letter__provider", "letter__patient"),
        pk=delivery_id,
    )


@require_GET
@require_action("letters.view")
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _get_delivery(delivery_id)
    audit_record(
        actor=request.user, action="letters.delivery.view", target=delivery.letter, detail={"delivery": delivery.pk}
    )
    context = {
        "delivery": delivery,
        "letter": delivery.letter,
        "attempts": delivery.attempt_log.all(),
        "redirect_form": RedirectForm(initial={"channel": delivery.channel, "address": delivery.address}),
        "section": "deliveries",
    }
    return render(request, "letters/delivery_detail.html", context)


@require_POST
@require_action("letters.send")
def delivery_retry(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _get_delivery(delivery_id)
    try:
        services.delivery_retry(delivery=delivery, by=request.user)
    except services.LetterRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{delivery.letter.reference} queued again.")
    return redirect("letters:delivery", delivery.pk)


@require_action("letters.send")
def delivery_redirect(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _get_delivery(delivery_id)
    form = RedirectForm(request.POST or None, initial={"channel": delivery.channel, "address": delivery.address})
    if request.method == "POST" and form.is_valid():
        try:
            replacement = services.delivery_redirect(
                delivery=delivery,
                channel=form.cleaned_data["channel"],
                address=form.cleaned_data["address"],
                by=request.user,
            )
        except services.LetterRefused as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"{delivery.letter.reference} redirected.")
            return redirect("letters:delivery", replacement.pk)
    context = {"delivery": delivery, "form": form, "section": "deliveries"}
    return render(request, "letters/redirect.html", context, status=400 if form.is_bound else 200)


@require_POST
@require_action("letters.send")
def delivery_confirm(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = _get_delivery(delivery_id)
    try:
        services.delivery_mark_delivered(delivery=delivery, by=request.user)
    except services.LetterRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Marked delivered.")
    return redirect("letters:delivery", delivery.pk)


# Print and mail


@require_GET
@require_action("letters.send")
def print_batch(request: HttpRequest) -> HttpResponse:
    """One PDF with every letter waiting in the print queue (or the ones ticked), a letter per page."""
    queued = Delivery.objects.print_queue().select_related("letter__report").order_by("created_at", "pk")
    chosen = [int(pk) for pk in request.GET.getlist("delivery") if pk.isdigit()]
    if chosen:
        queued = queued.filter(pk__in=chosen)
    deliveries = list(queued[:200])
    if not deliveries:
        messages.info(request, "The print queue is empty.")
        return redirect(reverse("letters:home") + "?queue=print")
    content = rendering.batch_pdf([rendering.letter_html(d.letter) for d in deliveries])
    audit_record(actor=request.user, action="letters.print_batch", detail={"deliveries": [d.pk for d in deliveries]})
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="print-batch-{timezone.localdate():%Y%m%d}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@require_action("letters.send")
def print_mailed(request: HttpRequest) -> HttpResponse:
    chosen = [int(pk) for pk in request.POST.getlist("delivery") if pk.isdigit()]
    count = services.deliveries_mark_mailed(deliveries=Delivery.objects.filter(pk__in=chosen), by=request.user)
    messages.success(request, f"{count} letter{'s' if count != 1 else ''} marked as mailed.")
    return redirect(reverse("letters:home") + "?queue=print")


# Letters


def _get_letter(letter_id: int) -> Letter:
    return get_object_or_404(
        Letter.objects.select_related("referral__patient", "provider", "patient", "report", "created_by"),
        pk=letter_id,
    )


@require_GET
@require_action("letters.view")
def letter_detail(request: HttpRequest, letter_id: int) -> HttpResponse:
    letter = _get_letter(letter_id)
    audit_record(actor=request.user, action="letters.letter.view", target=letter)
    context = {
        "letter": letter,
        "document": rendering.letter_html(letter, preview=True),
        "deliveries": letter.deliveries.all(),
        "section": "deliveries",
    }
    return render(request, "letters/letter_detail.html", context)


@require_GET
@require_action("letters.view")
def letter_pdf(request: HttpRequest, letter_id: int) -> HttpResponse:
    letter = _get_letter(letter_id)
    raw = request.GET.get("document", "1")
    number = int(raw) if raw.isdigit() else 1
    documents = rendering.letter_documents(letter)
    document = documents[min(max(number, 1), len(documents)) - 1]
    audit_record(actor=request.user, action="letters.letter.download", target=letter, detail={"document": number})
    response = HttpResponse(document.content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{document.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _preview_for(referral: Referral, data: dict, user) -> str:
    template = LetterTemplate.objects.filter(kind=data["kind"]).first()
    recipient = data["recipient"]
    if recipient == "referring_provider" and referral.referring_provider_id is None:
        return ""
    built = letter_context.build(
        referral=referral,
        recipient=recipient,
        provider=referral.referring_provider,
        practice=referral.referring_practice,
        patient=referral.patient,
        text=data.get("text", ""),
    )
    return rendering.document_html(
        title=data.get("title") or template.title,
        body_html=rendering.render_body(template.body, built.values),
        recipient_name=built.recipient_name,
        recipient_address=built.recipient_address,
        reference="(new letter)",
        preview=True,
    )


@require_action("letters.send")
def letter_new(request: HttpRequest, referral_id: int) -> HttpResponse:
    """A letter a person writes for a referral: choose the kind and recipient, add words, preview, send."""
    referral = get_object_or_404(Referral.objects.select_related("patient", "referring_provider"), pk=referral_id)
    form = LetterForm(request.POST or None)
    document = ""
    if request.method == "POST" and form.is_valid():
        if request.POST.get("action") == "send" and not request.htmx:
            try:
                letter = services.letter_send(by=request.user, referral=referral, **form.cleaned_data)
            except services.LetterRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{letter.get_kind_display()} {letter.reference} queued.")
                return redirect("referrals:detail", referral.pk)
        else:
            document = _preview_for(referral, form.cleaned_data, request.user)
            if not document:
                form.add_error("recipient", "This referral has no referring provider to write to.")
    # The page (or its preview) shows the patient (a successful send redirected above, audited by letter_send).
    audit_record(actor=request.user, action="letters.letter.compose", target=referral)
    context = {"referral": referral, "form": form, "document": document, "section": "deliveries"}
    if request.htmx:
        return render(request, "letters/_letter_preview.html", context)
    return render(request, "letters/letter_new.html", context, status=400 if form.errors else 200)


# Templates


@require_GET
@require_action("letters.edit")
def template_list(request: HttpRequest) -> HttpResponse:
    context = {"templates": LetterTemplate.objects.select_related("updated_by"), "section": "templates"}
    return render(request, "letters/templates.html", context)


@require_action("letters.edit")
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(LetterTemplate, pk=template_id)
    preview_url = reverse("letters:template_preview", args=[template.pk])
    initial = {"title": template.title, "body": template.body, "version": template.version}
    form = TemplateForm(request.POST or None, initial=initial, preview_url=preview_url)
    if request.method == "POST" and form.is_valid():
        try:
            services.template_save(
                template=template,
                title=form.cleaned_data["title"],
                body=form.cleaned_data["body"],
                by=request.user,
                expected_version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        except services.LetterRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Saved the {template.get_kind_display().lower()} template.")
            return redirect("letters:templates")
    context = {"template": template, "form": form, "fields": letter_context.FIELDS, "section": "templates"}
    return render(request, "letters/template_edit.html", context, status=400 if form.errors else 200)


@require_POST
@require_action("letters.edit")
def template_preview(request: HttpRequest, template_id: int) -> HttpResponse:
    """The live preview beside the editor: the template on the sample letter, or why it would be refused."""
    template = get_object_or_404(LetterTemplate, pk=template_id)
    body = request.POST.get("body", "")
    problem, document = "", ""
    try:
        rendering.check_template(body)
    except ValidationError as exc:
        problem = " ".join(exc.messages)
    if not problem:
        document = rendering.document_html(
            title=request.POST.get("title") or template.title,
            body_html=rendering.render_sample(body),
            recipient_name="Imogen Castellanos, MD",
            recipient_address="Dublin Family Medicine\n6800 Perimeter Dr\nDublin, OH 43017",
            reference="L-0000 (sample)",
            signature="Electronically signed by Ana Ortega, MD (sample)" if template.kind == "consult_report" else "",
            preview=True,
        )
    return render(request, "letters/_template_preview.html", {"problem": problem, "document": document})


# Which steps send what


@require_action("letters.edit")
def automation(request: HttpRequest) -> HttpResponse:
    conflict = ""
    if request.method == "POST":
        enabled = {int(pk) for pk in request.POST.getlist("enabled") if pk.isdigit()}
        with transaction.atomic():
            # The switches as the page showed them: a save over someone else's newer change is refused.
            sent = request.POST.get(stale.FIELD, "")
            if sent and sent != stale.rows_stamp(LetterRule.objects.select_for_update().order_by("pk")):
                conflict = (
                    "Someone else changed these letter rules after you opened the page; your changes were not "
                    "saved. Reload the page to see theirs, then make yours again."
                )
            else:
                services.rules_save(enabled_ids=enabled, by=request.user)
        if not conflict:
            messages.success(request, "Saved which steps send letters.")
            return redirect("letters:automation")
    steps = dict(services.RULE_STEPS)
    rules = [(rule, steps.get(rule.step, rule.step)) for rule in LetterRule.objects.all()]
    context = {"rules": rules, "add_form": RuleAddForm(), "section": "automation", "conflict": conflict}
    context["edit_stamp"] = stale.rows_stamp(rule for rule, _ in rules)
    context["last_quarter"] = services.quarter_before(timezone.localdate())
    return render(request, "letters/automation.html", context, status=stale.CONFLICT if conflict else 200)


@require_POST
@require_action("letters.edit")
def automation_add(request: HttpRequest) -> HttpResponse:
    form = RuleAddForm(request.POST)
    if form.is_valid():
        services.rule_add(by=request.user, **form.cleaned_data)
        messages.success(request, "Added.")
    else:
        messages.error(request, "Choose a step, a letter and a recipient.")
    return redirect("letters:automation")


@require_POST
@require_action("letters.edit")
def summaries_create(request: HttpRequest) -> HttpResponse:
    start, end = services.quarter_before(timezone.localdate())
    letters = services.thank_you_summaries_create(start=start, end=end, by=request.user)
    messages.success(request, f"{len(letters)} thank-you summar{'y' if len(letters) == 1 else 'ies'} queued.")
    return redirect("letters:automation")


# Status links for referring offices


@require_GET
@require_action("letters.links")
def links(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:100]
    practices = []
    if len(q) >= 2:
        practices = list(ReferringPractice.objects.current().search(q).order_by("name")[:20])
    context = {
        "links": StatusLink.objects.select_related("practice", "created_by").order_by("-created_at")[:200],
        "practices": practices,
        "q": q,
        "now": timezone.now(),
        "section": "links",
    }
    return render(request, "letters/links.html", context)


@require_POST
@require_action("letters.links")
def link_create(request: HttpRequest, practice_id: int) -> HttpResponse:
    """The link is shown once, on this answer; only its hash is kept (no redirect, no flash message)."""
    practice = get_object_or_404(ReferringPractice.objects.current(), pk=practice_id)
    link, token = services.status_link_create(practice=practice, by=request.user, note=request.POST.get("note", ""))
    context = {
        "link": link,
        "url": request.build_absolute_uri(reverse("letters_public:status", args=[token])),
        "form_url": request.build_absolute_uri(reverse("letters_public:refer_office", args=[office_token(practice)])),
        "section": "links",
    }
    response = render(request, "letters/link_created.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@require_action("letters.links")
def link_revoke(request: HttpRequest, link_id: int) -> HttpResponse:
    link = get_object_or_404(StatusLink, pk=link_id)
    services.status_link_revoke(link=link, by=request.user)
    messages.success(request, f"Revoked the link {link.hint}… for {link.practice}.")
    return redirect("letters:links")
