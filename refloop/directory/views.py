from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from refloop import timeline
from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.directory import services
from refloop.directory.forms import (
    AffiliationForm,
    FilterForm,
    LocationForm,
    NewPracticeForm,
    OtherSourceForm,
    PracticeForm,
    ProviderForm,
    StaffContactForm,
)
from refloop.directory.models import (
    OtherSource,
    PracticeLocation,
    ProviderPractice,
    ReferringPractice,
    ReferringProvider,
    StaffContact,
)
from refloop.directory.selectors import practice_list, provider_list
from refloop.lib.csvsafe import csv_text
from refloop.lib.stale import CONFLICT, carry_stamp, stale_problem
from refloop.referrals.source_summary import source_referral_summary

PAGE_SIZE = 50


def _get_provider(provider_id: int) -> ReferringProvider:
    return get_object_or_404(
        ReferringProvider.objects.select_related("tier", "territory", "liaison"), pk=provider_id
    )


def _get_practice(practice_id: int) -> ReferringPractice:
    return get_object_or_404(
        ReferringPractice.objects.select_related("tier", "territory", "liaison"), pk=practice_id
    )


def _merged_redirect(entry, url_name: str) -> HttpResponse | None:
    """A merged record's old links lead to the record it was merged into."""
    if entry.merged_into_id:
        return redirect(url_name, entry.merged_into_id)
    return None


def _list_page(
    request: HttpRequest, *, queryset, template: str, rows_template: str, kind: str
) -> HttpResponse:
    form = FilterForm(request.GET)
    page = Paginator(queryset(form.filters()), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "kind": kind, "querystring": _querystring(request)}
    return render(request, rows_template if request.htmx else template, context)


def _querystring(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@require_GET
@require_action("directory.view")
def home(request: HttpRequest) -> HttpResponse:
    return _list_page(
        request,
        queryset=provider_list,
        template="directory/provider_list.html",
        rows_template="directory/_provider_rows.html",
        kind="providers",
    )


@require_GET
@require_action("directory.view")
def practice_index(request: HttpRequest) -> HttpResponse:
    def with_counts(filters):
        return practice_list(filters).annotate(provider_count=Count("affiliations__provider", distinct=True))

    return _list_page(
        request,
        queryset=with_counts,
        template="directory/practice_list.html",
        rows_template="directory/_practice_rows.html",
        kind="practices",
    )


@require_GET
@require_action("directory.view")
def provider_detail(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = _get_provider(provider_id)
    if moved := _merged_redirect(provider, "directory:provider"):
        return moved
    affiliations = provider.affiliations.select_related("practice", "location").order_by("-is_primary")
    context = {
        "provider": provider,
        "affiliations": affiliations,
        "taxonomies": provider.taxonomies.all(),
        "timeline": timeline.timeline(request.user, provider),
        "referral_summary": source_referral_summary(user=request.user, entry=provider),
        "affiliation_form": AffiliationForm(),
    }
    return render(request, "directory/provider_detail.html", context)


@require_GET
@require_action("directory.view")
def practice_detail(request: HttpRequest, practice_id: int) -> HttpResponse:
    practice = _get_practice(practice_id)
    if moved := _merged_redirect(practice, "directory:practice"):
        return moved
    affiliations = practice.affiliations.select_related("provider", "location").order_by(
        "provider__last_name"
    )
    context = {
        "practice": practice,
        "locations": practice.locations.all(),
        "affiliations": affiliations,
        "staff": practice.staff.order_by("-is_active", "last_name"),
        "timeline": timeline.timeline(request.user, practice),
        "referral_summary": source_referral_summary(user=request.user, entry=practice),
    }
    return render(request, "directory/practice_detail.html", context)


def _versioned_edit(request, *, form, save, success_url: str, title: str, cancel_url: str) -> HttpResponse:
    """Validate a directory form and save through `save`, telling the user when someone else saved first."""
    if request.method == "POST" and form.is_valid():
        try:
            entry = save(form)
        except services.StaleEdit as exc:
            form.add_error(None, f"{exc} Reload the page to see their change, then make yours again.")
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Saved {entry}.")
            return redirect(success_url or entry_url(entry))
    return render(request, "directory/form.html", {"form": form, "title": title, "cancel_url": cancel_url})


def entry_url(entry) -> str:
    if isinstance(entry, ReferringProvider):
        return reverse("directory:provider", args=[entry.pk])
    if isinstance(entry, ReferringPractice):
        return reverse("directory:practice", args=[entry.pk])
    return reverse("directory:home")


@require_action("directory.edit")
def provider_new(request: HttpRequest) -> HttpResponse:
    # Filled in from the link on a message waiting for review (as the referring system sent them); the form checks
    # every value as if it had been typed.
    sent = ("npi", "first_name", "last_name", "fax", "phone", "direct_address", "report_channel")
    initial = {k: request.GET[k][:100] for k in sent if request.GET.get(k)}
    form = ProviderForm(request.POST or None, initial=initial)
    back = request.GET.get("next", "")  # and back to that message once the provider is saved
    back = back if back.startswith("/interfaces/") and url_has_allowed_host_and_scheme(back, allowed_hosts=None) else ""

    def save(f):
        fields = {k: v for k, v in f.changes().items()}
        return services.provider_create(**fields)

    return _versioned_edit(
        request,
        form=form,
        save=save,
        success_url=back,
        title="New referring provider",
        cancel_url=reverse("directory:home"),
    )


@require_action("directory.edit")
def provider_edit(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = _get_provider(provider_id)
    form = ProviderForm(request.POST or None, instance=ReferringProvider.objects.get(pk=provider.pk))

    def save(f):
        return services.provider_update(
            provider=provider, changes=f.changes(), expected_version=f.cleaned_data.get("version")
        )

    return _versioned_edit(
        request,
        form=form,
        save=save,
        success_url="",
        title=f"Edit {provider}",
        cancel_url=entry_url(provider),
    )


@require_action("directory.edit")
def practice_new(request: HttpRequest) -> HttpResponse:
    form = NewPracticeForm(request.POST or None)

    def save(f):
        fields = {k: v for k, v in f.changes().items()}
        return services.practice_create(location=f.location(), **fields)

    return _versioned_edit(
        request,
        form=form,
        save=save,
        success_url="",
        title="New referring practice",
        cancel_url=reverse("directory:practices"),
    )


@require_action("directory.edit")
def practice_edit(request: HttpRequest, practice_id: int) -> HttpResponse:
    practice = _get_practice(practice_id)
    form = PracticeForm(request.POST or None, instance=ReferringPractice.objects.get(pk=practice.pk))

    def save(f):
        return services.practice_update(
            practice=practice, changes=f.changes(), expected_version=f.cleaned_data.get("version")
        )

    return _versioned_edit(
        request,
        form=form,
        save=save,
        success_url="",
        title=f"Edit {practice}",
        cancel_url=entry_url(practice),
    )


def _plain_edit(request, *, form, save, success_url: str, title: str) -> HttpResponse:
    """Save a form with no version of its own; the record's stamp (lib.stale) keeps a later save from
    silently overwriting one made since the form was opened."""
    carry_stamp(form, form.instance)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                saved = None if stale_problem(form, form.instance) else save(form)
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if saved is not None:
                messages.success(request, f"Saved {saved}.")
                return redirect(success_url)
            status = CONFLICT
    context = {"form": form, "title": title, "cancel_url": success_url}
    return render(request, "directory/form.html", context, status=status)


@require_action("directory.edit")
def location_new(request: HttpRequest, practice_id: int) -> HttpResponse:
    practice = _get_practice(practice_id)
    form = LocationForm(request.POST or None, instance=PracticeLocation(practice=practice))
    return _plain_edit(
        request,
        form=form,
        save=lambda f: services.location_save(location=f.instance),
        success_url=entry_url(practice),
        title=f"New location of {practice}",
    )


@require_action("directory.edit")
def location_edit(request: HttpRequest, location_id: int) -> HttpResponse:
    location = get_object_or_404(PracticeLocation.objects.select_related("practice"), pk=location_id)
    form = LocationForm(request.POST or None, instance=location)
    return _plain_edit(
        request,
        form=form,
        save=lambda f: services.location_save(location=f.instance),
        success_url=entry_url(location.practice),
        title=f"Edit location {location}",
    )


@require_action("directory.edit")
def staff_new(request: HttpRequest, practice_id: int) -> HttpResponse:
    practice = _get_practice(practice_id)
    form = StaffContactForm(request.POST or None, instance=StaffContact(practice=practice))
    return _plain_edit(
        request,
        form=form,
        save=lambda f: services.staff_contact_save(contact=f.instance),
        success_url=entry_url(practice),
        title=f"New staff contact at {practice}",
    )


@require_action("directory.edit")
def staff_edit(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = get_object_or_404(StaffContact.objects.select_related("practice"), pk=contact_id)
    form = StaffContactForm(request.POST or None, instance=contact)
    return _plain_edit(
        request,
        form=form,
        save=lambda f: services.staff_contact_save(contact=f.instance),
        success_url=entry_url(contact.practice),
        title=f"Edit {contact}",
    )


@require_GET
@require_action("directory.view")
def staff_index(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:100]
    contacts = StaffContact.objects.select_related("practice").filter(practice__merged_into__isnull=True)
    for term in q.split()[:4]:
        contacts = contacts.filter(
            Q(first_name__icontains=term) | Q(last_name__icontains=term) | Q(practice__name__icontains=term)
        )
    page = Paginator(contacts.order_by("last_name", "first_name", "pk"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    template = "directory/_staff_rows.html" if request.htmx else "directory/staff_list.html"
    return render(request, template, {"page": page, "q": q, "kind": "staff", "querystring": f"q={q}"})


@require_GET
@require_action("directory.view")
def source_index(request: HttpRequest) -> HttpResponse:
    return render(
        request, "directory/source_list.html", {"sources": OtherSource.objects.all(), "kind": "sources"}
    )


@require_action("directory.edit")
def source_new(request: HttpRequest) -> HttpResponse:
    form = OtherSourceForm(request.POST or None)
    return _plain_edit(
        request,
        form=form,
        save=lambda f: services.other_source_save(source=f.instance),
        success_url=reverse("directory:sources"),
        title="New referral source",
    )


@require_action("directory.edit")
def source_edit(request: HttpRequest, source_id: int) -> HttpResponse:
    form = OtherSourceForm(request.POST or None, instance=get_object_or_404(OtherSource, pk=source_id))
    return _plain_edit(
        request,
        form=form,
        save=lambda f: services.other_source_save(source=f.instance),
        success_url=reverse("directory:sources"),
        title="Edit referral source",
    )


@require_GET
@require_action("directory.edit")
def practice_pick(request: HttpRequest, provider_id: int) -> HttpResponse:
    """Type-ahead for choosing the practice a provider works at (the directory holds thousands)."""
    q = request.GET.get("practice_q", "").strip()[:100]
    practices = []
    if len(q) >= 2:
        locations = Prefetch("locations", queryset=PracticeLocation.objects.order_by("-is_primary", "pk"))
        practices = ReferringPractice.objects.current().search(q).prefetch_related(locations)[:10]
    return render(request, "directory/_practice_pick.html", {"practices": practices, "q": q})


@require_POST
@require_action("directory.edit")
def affiliation_add(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = _get_provider(provider_id)
    form = AffiliationForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Choose a practice from the list: "
            + "; ".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()),
        )
        return redirect(entry_url(provider))
    try:
        services.affiliation_set(
            provider=provider,
            practice=form.cleaned_data["practice"],
            location=form.cleaned_data["location"],
            days=form.cleaned_data["days"],
            is_primary=form.cleaned_data["is_primary"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{provider} works at {form.cleaned_data['practice']}.")
    return redirect(entry_url(provider))


@require_POST
@require_action("directory.edit")
def affiliation_remove(request: HttpRequest, affiliation_id: int) -> HttpResponse:
    affiliation = get_object_or_404(
        ProviderPractice.objects.select_related("provider", "practice"), pk=affiliation_id
    )
    affiliation.delete()
    messages.success(request, f"Removed {affiliation}.")
    return redirect(entry_url(affiliation.provider))


def _export(request: HttpRequest, *, name: str, header: list[str], rows) -> HttpResponse:
    audit_record(
        actor=request.user, action="directory.export", detail={"list": name, "filters": request.GET.dict()}
    )
    stamp = timezone.localdate().isoformat()
    response = HttpResponse(csv_text(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="refloop-{name}-{stamp}.csv"'
    return response


@require_GET
@require_action("directory.export")
def provider_export(request: HttpRequest) -> HttpResponse:
    providers = provider_list(FilterForm(request.GET).filters())
    header = [
        "NPI",
        "First name",
        "Last name",
        "Credentials",
        "Specialty",
        "Taxonomy",
        "Phone",
        "Fax",
        "Email",
        "Address",
        "City",
        "State",
        "ZIP",
        "Report channel",
        "Tier",
        "Territory",
        "Liaison",
        "Active",
        "Last referral",
    ]
    rows = (
        [
            p.npi,
            p.first_name,
            p.last_name,
            p.credentials,
            p.specialty,
            p.taxonomy_code,
            p.phone,
            p.fax,
            p.email,
            p.address_line1,
            p.city,
            p.state,
            p.postal_code,
            p.get_report_channel_display(),
            p.tier.code if p.tier else "",
            p.territory or "",
            p.liaison or "",
            "yes" if p.is_active else "no",
            p.last_referral_on or "",
        ]
        for p in providers.iterator(chunk_size=2000)
    )
    return _export(request, name="providers", header=header, rows=rows)


@require_GET
@require_action("directory.export")
def practice_export(request: HttpRequest) -> HttpResponse:
    locations = Prefetch("locations", queryset=PracticeLocation.objects.order_by("-is_primary", "pk"))
    practices = practice_list(FilterForm(request.GET).filters()).prefetch_related(locations)
    header = [
        "Name",
        "NPI",
        "Phone",
        "Fax",
        "Address",
        "City",
        "State",
        "ZIP",
        "Tier",
        "Territory",
        "Liaison",
        "Active",
        "Last referral",
    ]

    def row(p):
        loc = p.primary_location
        return [
            p.name,
            p.npi,
            p.phone,
            p.fax,
            loc.address_line1 if loc else "",
            loc.city if loc else "",
            loc.state if loc else "",
            loc.postal_code if loc else "",
            p.tier.code if p.tier else "",
            p.territory or "",
            p.liaison or "",
            "yes" if p.is_active else "no",
            p.last_referral_on or "",
        ]

    return _export(
        request, name="practices", header=header, rows=(row(p) for p in practices.iterator(chunk_size=2000))
    )
