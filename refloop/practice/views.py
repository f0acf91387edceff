from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from refloop.accounts.audit import audit_record
from refloop.accounts.permissions import require_action
from refloop.directory.models import Territory
from refloop.lib.stale import CONFLICT, carry_stamp, stale_problem
from refloop.practice import forms
from refloop.practice.models import Clinician, Holiday, Location, Practice, SecuritySettings


@require_action("settings.view")
def settings_home(request: HttpRequest) -> HttpResponse:
    context = {
        "practice": Practice.current(),
        "locations": Location.objects.all(),
        "clinicians": Clinician.objects.prefetch_related("locations").select_related("user"),
        "holidays": Holiday.objects.all(),
        "territories": Territory.objects.select_related("liaison"),
        "security": SecuritySettings.current(),
        "users": get_user_model().objects.all() if request.user.can("users.manage") else None,
    }
    return render(request, "practice/settings.html", context)


def _edit(
    request: HttpRequest,
    *,
    form_class: type[ModelForm],
    instance: Model | None,
    title: str,
    anchor: str,
) -> HttpResponse:
    """Create or update one record from a settings form, then return to its section of the settings page."""
    status = 200
    if request.method == "POST":
        form = carry_stamp(form_class(request.POST, instance=instance), instance)
        if form.is_valid():
            with transaction.atomic():
                stale = stale_problem(form, instance)
                saved = None if stale else form.save()
            if saved is not None:
                verb = "Saved" if instance is not None else "Added"
                messages.success(request, f"{verb} {saved}.")
                return redirect(reverse("practice:settings") + f"#{anchor}")
            status = CONFLICT
    else:
        form = carry_stamp(form_class(instance=instance), instance)
    return render(request, "practice/form.html", {"form": form, "title": title, "anchor": anchor}, status=status)


@require_action("settings.edit")
def practice_edit(request: HttpRequest) -> HttpResponse:
    practice = Practice.current()
    return _edit(
        request, form_class=forms.PracticeForm, instance=practice, title="Practice profile", anchor="practice"
    )


@require_action("settings.edit")
def location_edit(request: HttpRequest, location_id: int | None = None) -> HttpResponse:
    location = get_object_or_404(Location, pk=location_id) if location_id else None
    return _edit(
        request,
        form_class=forms.LocationForm,
        instance=location,
        title=f"Edit {location}" if location else "New location",
        anchor="locations",
    )


@require_action("settings.edit")
def clinician_edit(request: HttpRequest, clinician_id: int | None = None) -> HttpResponse:
    clinician = get_object_or_404(Clinician, pk=clinician_id) if clinician_id else None
    return _edit(
        request,
        form_class=forms.ClinicianForm,
        instance=clinician,
        title=f"Edit {clinician}" if clinician else "New clinician",
        anchor="clinicians",
    )


@require_action("settings.edit")
def holiday_edit(request: HttpRequest) -> HttpResponse:
    return _edit(request, form_class=forms.HolidayForm, instance=None, title="New holiday", anchor="holidays")


@require_POST
@require_action("settings.edit")
def holiday_delete(request: HttpRequest, holiday_id: int) -> HttpResponse:
    holiday = get_object_or_404(Holiday, pk=holiday_id)
    holiday.delete()
    messages.success(request, f"Removed {holiday}.")
    return redirect(reverse("practice:settings") + "#holidays")


@require_action("settings.edit")
def territory_edit(request: HttpRequest, territory_id: int | None = None) -> HttpResponse:
    territory = get_object_or_404(Territory, pk=territory_id) if territory_id else None
    return _edit(
        request,
        form_class=forms.TerritoryForm,
        instance=territory,
        title=f"Edit {territory}" if territory else "New territory",
        anchor="territories",
    )


@require_action("settings.edit")
def security_edit(request: HttpRequest) -> HttpResponse:
    current = SecuritySettings.current()
    before = current.idle_logoff_minutes
    clinical_before = current.liaisons_see_clinical_details
    response = _edit(
        request, form_class=forms.SecuritySettingsForm, instance=current, title="Security", anchor="security"
    )
    if request.method == "POST" and response.status_code == 302:
        audit_record(
            actor=request.user,
            action="settings.security",
            target=current,
            detail={
                "idle_logoff_minutes": [before, current.idle_logoff_minutes],
                "liaisons_see_clinical_details": [clinical_before, current.liaisons_see_clinical_details],
            },
        )
    return response


@require_action("users.manage")
def user_edit(request: HttpRequest, user_id: int | None = None) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=user_id) if user_id else None
    form_class = forms.UserForm if user else forms.NewUserForm
    return _edit(
        request,
        form_class=form_class,
        instance=user,
        title=f"Edit {user}" if user else "New user",
        anchor="users",
    )
