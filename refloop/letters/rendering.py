"""Letter templates to HTML, and letters to PDF with WeasyPrint.

Templates run in their own Django template engine: the built-in tags and filters only (no {% load %}, no
{% include %}), autoescaped, and fed the plain values of `letters.context`. A template is checked when it is
saved, never when a letter is due: it must compile, and rendering it against the sample context with a marker
for unknown variables must leave no marker behind.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache, lru_cache

from django.core.exceptions import ValidationError
from django.template import Context, Engine, TemplateSyntaxError
from django.template.loader import render_to_string
from django.utils import timezone

from refloop.letters import context as letter_context

_BUILTINS = ["django.template.defaulttags", "django.template.defaultfilters"]
_UNKNOWN = "\x00unknown:%s\x00"
_UNKNOWN_RE = re.compile("\x00unknown:(.*?)\x00")


@cache
def _engine(checking: bool = False) -> Engine:
    return Engine(
        dirs=[],
        app_dirs=False,
        libraries={},
        builtins=_BUILTINS,
        autoescape=True,
        string_if_invalid=_UNKNOWN if checking else "",
    )


def check_template(body: str) -> None:
    """Refuse a template that would not render: broken syntax, or a field that is not in FIELDS."""
    if not body.strip():
        raise ValidationError({"body": "The letter needs a body."})
    try:
        template = _engine(True).from_string(body)
    except TemplateSyntaxError as exc:
        raise ValidationError({"body": f"The template does not compile: {_syntax_message(exc, body)}"}) from None
    try:
        output = template.render(Context(letter_context.sample_context()))
    except Exception as exc:  # a filter given the wrong kind of value, a loop over a field that is not a list
        raise ValidationError({"body": f"The template fails on the sample letter: {exc}"}) from None
    unknown = sorted(set(_UNKNOWN_RE.findall(output)))
    if unknown:
        names = ", ".join("{{ " + name + " }}" for name in unknown)
        raise ValidationError(
            {
                "body": f"Unknown field{'s' if len(unknown) > 1 else ''}: {names}. "
                "Use the fields listed beside the editor."
            }
        )


def _syntax_message(exc: TemplateSyntaxError, body: str) -> str:
    info = getattr(exc, "template_debug", None)
    if info and info.get("line"):
        return f"line {info['line']}: {exc}"
    return str(exc)


def render_body(body: str, values: dict) -> str:
    """The template's HTML for one letter (unknown fields print as nothing: the template was checked)."""
    return _compiled(body).render(Context(values))


@lru_cache(maxsize=64)
def _compiled(body: str):
    # Keyed by the template's text, so an edited template is compiled afresh; every referral intake renders its
    # receipt letter, and compiling the same text each time was a good part of that (issue 8).
    return _engine().from_string(body)


def render_sample(body: str) -> str:
    return render_body(body, letter_context.sample_context())


def document_html(
    *,
    title: str,
    body_html: str,
    recipient_name: str,
    recipient_address: str,
    reference: str,
    date=None,
    signature: str = "",
    preview: bool = False,
) -> str:
    """The whole letter page: letterhead, date, recipient block, heading, body, signature and footer."""
    return render_to_string(
        "letters/pdf/letter.html",
        {
            "practice": letter_context.practice_values(),
            "title": title,
            "body": body_html,
            "recipient_name": recipient_name,
            "recipient_address": recipient_address,
            "reference": reference,
            "date": date or timezone.localdate(),
            "signature": signature,
            "preview": preview,
        },
    )


def letter_html(letter, *, preview: bool = False) -> str:
    signature = ""
    if letter.report_id:
        signature = letter_context.signature_line(letter.report)
    return document_html(
        title=letter.title,
        body_html=letter.html,
        recipient_name=letter.recipient_name,
        recipient_address=letter.recipient_address,
        reference=letter.reference,
        date=timezone.localtime(letter.created_at).date(),
        signature=signature,
        preview=preview,
    )


@cache
def _stylesheet():
    from weasyprint import CSS

    return CSS(string=render_to_string("letters/letter.css"), url_fetcher=_fetcher())


def _fetcher():
    """Letters load nothing from the network (a closed hospital network, and no template may make the worker
    fetch a URL): only data: URIs resolve."""
    try:
        from weasyprint.urls import URLFetcher
    except ImportError:  # WeasyPrint before 68 takes a plain function
        from weasyprint import default_url_fetcher

        def fetch(url, *args, **kwargs):
            if not url.startswith("data:"):
                raise ValueError(f"letters load nothing from {url}")
            return default_url_fetcher(url, *args, **kwargs)

        return fetch
    return URLFetcher(allowed_protocols={"data"})


def _document(html: str):
    from weasyprint import HTML

    return HTML(string=html, url_fetcher=_fetcher(), base_url=None).render(stylesheets=[_stylesheet()])


def pdf_bytes(html: str) -> bytes:
    return _document(html).write_pdf()


def batch_pdf(pages_html: list[str]) -> bytes:
    """Several letters in one PDF, each starting on its own page (the print-and-mail batch)."""
    documents = [_document(html) for html in pages_html]
    pages = [page for document in documents for page in document.pages]
    return documents[0].copy(pages).write_pdf()


@dataclass(frozen=True)
class Document:
    filename: str
    content: bytes


def letter_pdf(letter) -> bytes:
    """The letter's PDF: rendered once, stored, and served the same every time after (what was sent)."""
    from django.core.files.base import ContentFile

    if letter.pdf and letter.pdf_sha256:
        try:
            with letter.pdf.open("rb") as handle:
                return handle.read()
        except FileNotFoundError:
            pass
    content = pdf_bytes(letter_html(letter))
    letter.pdf_sha256 = hashlib.sha256(content).hexdigest()
    letter.pdf.save(f"{letter.pk}.pdf", ContentFile(content), save=False)
    type(letter).objects.filter(pk=letter.pk).update(pdf=letter.pdf.name, pdf_sha256=letter.pdf_sha256)
    return content


def letter_documents(letter) -> list[Document]:
    """What goes to the recipient: the letter, and the EHR's own PDF when a report came with one."""
    slug = letter.get_kind_display().lower().replace(" / ", "-").replace(" ", "-")
    documents = [Document(f"{slug}-{letter.reference}.pdf", letter_pdf(letter))]
    report = letter.report if letter.report_id else None
    if report is not None and report.ehr_pdf:
        with report.ehr_pdf.open("rb") as handle:
            documents.append(Document(f"ehr-note-{letter.reference}.pdf", handle.read()))
    return documents
