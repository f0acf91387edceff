"""Settings → API keys: an administrator creates a key for one integration with the scopes it needs, sees
the secret once, and revokes it when the integration is retired or the key may have leaked."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from refloop.accounts.permissions import require_action
from refloop.accounts.roles import MATRIX
from refloop.interop.apikeys import apikey_create, apikey_revoke
from refloop.interop.models import ApiKey


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="The integration that will use the key, e.g. “Epic referrals”.")
    scopes = forms.MultipleChoiceField(
        choices=[(action, action) for action in MATRIX],
        widget=forms.CheckboxSelectMultiple,
        help_text="The actions the key may do; each API operation names the one it needs (see /api/docs).",
    )


def _page(request: HttpRequest, form: ApiKeyForm, *, secret: str = "", created: ApiKey | None = None, status=200):
    context = {"form": form, "keys": ApiKey.objects.all(), "secret": secret, "created": created}
    response = render(request, "interop/apikeys.html", context, status=status)
    if secret:
        response["Cache-Control"] = "no-store"  # the only time the secret is shown: never from a cache
    return response


@require_action("apikeys.manage")
def apikey_list(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            key, secret = apikey_create(
                name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"], by=request.user
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return _page(request, ApiKeyForm(), secret=secret, created=key)
    return _page(request, form, status=400)


@require_POST
@require_action("apikeys.manage")
def apikey_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=key_id)
    apikey_revoke(key=key, by=request.user)
    messages.success(request, f"Revoked the key {key.name}: it no longer opens the API.")
    return redirect("interop:apikeys")
