"""Pages without a login: a referring office's status link, the secure link a letter email carries, and the
public referral form.

Each is rate-limited per client address and per token, and each answer to a token is in the audit trail. A
token that is wrong, expired or revoked, and a document that is not that office's, all get the same 404 page:
nothing tells a guesser which part was wrong.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from refloop.accounts.audit import audit_record
from refloop.letters import ratelimit, rendering, selectors, services
from refloop.letters.forms import PublicReferralForm, SpamRefused, form_token, office_from_token
from refloop.letters.models import LetterLink, StatusLink


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL: never send it on to another site
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _not_found(request: HttpRequest) -> HttpResponse:
    return _private(render(request, "letters/public/not_found.html", status=404))


def _too_many(request: HttpRequest) -> HttpResponse:
    response = render(request, "letters/public/rate_limited.html", status=429)
    response["Retry-After"] = "600"
    return _private(response)


def _refused(request: HttpRequest, what: str, token: str) -> HttpResponse:
    audit_record(
        actor=None,
        actor_label="public page",
        action=f"letters.{what}.refused",
        detail={"ip": ratelimit.client_ip(request), "token_hint": token[:6]},
    )
    return _not_found(request)


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return _private(response)


# The referring office's status link


@login_not_required
@require_GET
def status(request: HttpRequest, token: str) -> HttpResponse:
    if not ratelimit.allowed(request, scope="status", token=token):
        return _too_many(request)
    link = StatusLink.objects.select_related("practice").by_token(token)
    if link is None:
        return _refused(request, "status_link", token)
    rows = selectors.status_rows(link.practice)
    StatusLink.objects.filter(pk=link.pk).update(last_used_at=timezone.now(), views=F("views") + 1)
    audit_record(
        actor=None,
        actor_label=f"status link {link.hint}",
        action="letters.status_link.view",
        target=link,
        detail={
            "ip": ratelimit.client_ip(request),
            "practice": link.practice_id,
            "referrals": len(rows),
            "shown": [row.referral.pk for row in rows],
        },
    )
    context = {"link": link, "practice": link.practice, "rows": rows, "token": token}
    return _private(render(request, "letters/public/status.html", context))


@login_not_required
@require_GET
def status_document(request: HttpRequest, token: str, letter_id: int, number: int) -> HttpResponse:
    if not ratelimit.allowed(request, scope="status", token=token):
        return _too_many(request)
    link = StatusLink.objects.select_related("practice").by_token(token)
    letter = selectors.sent_report_for_office(link.practice, letter_id) if link else None
    if letter is None:
        return _refused(request, "status_link", token)
    documents = rendering.letter_documents(letter)
    if not 1 <= number <= len(documents):
        return _not_found(request)
    audit_record(
        actor=None,
        actor_label=f"status link {link.hint}",
        action="letters.report.download",
        target=letter,
        detail={"ip": ratelimit.client_ip(request), "status_link": link.pk, "document": number},
    )
    document = documents[number - 1]
    return _pdf(document.content, document.filename)


# The secure link in a letter email


def _letter_link(token: str) -> LetterLink | None:
    return LetterLink.objects.select_related("delivery__letter__report").by_token(token)


@login_not_required
@require_GET
def letter(request: HttpRequest, token: str) -> HttpResponse:
    if not ratelimit.allowed(request, scope="letter", token=token):
        return _too_many(request)
    link = _letter_link(token)
    if link is None:
        return _refused(request, "letter_link", token)
    the_letter = link.delivery.letter
    documents = rendering.letter_documents(the_letter)
    audit_record(
        actor=None,
        actor_label="secure letter link",
        action="letters.letter_link.view",
        target=the_letter,
        detail={"ip": ratelimit.client_ip(request), "delivery": link.delivery_id},
    )
    context = {"letter": the_letter, "documents": documents, "link": link, "token": token}
    return _private(render(request, "letters/public/letter.html", context))


@login_not_required
@require_GET
def letter_document(request: HttpRequest, token: str, number: int) -> HttpResponse:
    if not ratelimit.allowed(request, scope="letter", token=token):
        return _too_many(request)
    link = _letter_link(token)
    if link is None:
        return _refused(request, "letter_link", token)
    documents = rendering.letter_documents(link.delivery.letter)
    if not 1 <= number <= len(documents):
        return _not_found(request)
    LetterLink.objects.filter(pk=link.pk).update(downloads=F("downloads") + 1)
    audit_record(
        actor=None,
        actor_label="secure letter link",
        action="letters.letter.download",
        target=link.delivery.letter,
        detail={"ip": ratelimit.client_ip(request), "delivery": link.delivery_id, "document": number},
    )
    document = documents[number - 1]
    return _pdf(document.content, document.filename)


# The public referral form


@login_not_required
def refer(request: HttpRequest, office: str | None = None) -> HttpResponse:
    """The form a referring office uses without an account; `office` is the practice's own signed link."""
    practice = office_from_token(office) if office is not None else None
    if office is not None and practice is None:
        return _not_found(request)
    if not ratelimit.allowed(request, scope="refer-post" if request.method == "POST" else "refer"):
        return _too_many(request)
    if request.method != "POST":
        initial = {"started": form_token(), "office_name": practice.name if practice else ""}
        form = PublicReferralForm(initial=initial)
        return _private(render(request, "letters/public/refer.html", {"form": form, "practice": practice}))
    form = PublicReferralForm(request.POST, request.FILES)
    try:
        token = form.check_not_spam()
    except SpamRefused as exc:
        audit_record(
            actor=None,
            actor_label="web form",
            action="letters.web_referral.refused",
            detail={"ip": ratelimit.client_ip(request), "why": str(exc)},
        )
        response = render(request, "letters/public/refer_refused.html", status=400)
        return _private(response)
    if form.is_valid():
        try:
            received = services.web_referral_submit(
                data=form.cleaned_data,
                attachments=form.cleaned_data.get("attachments") or [],
                form_token=token,
                practice=practice,
            )
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            context = {"reference": f"W-{received.referral.pk}", "practice": practice}
            return _private(render(request, "letters/public/refer_done.html", context))
    data = form.data.copy()
    data["started"] = token  # keep the original time: a corrected form is not "too fast"
    form.data = data
    return _private(render(request, "letters/public/refer.html", {"form": form, "practice": practice}, status=400))


def _errors_to_form(form: PublicReferralForm, exc: ValidationError) -> None:
    names = {
        "first_name": "provider_first_name",
        "last_name": "provider_last_name",
        "birth_date": "patient_birth_date",
    }
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        target = names.get(field, field)
        for error in errors:
            form.add_error(target if target in form.fields else None, error)
