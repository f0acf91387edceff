"""TOTP two-factor authentication (django-otp): who must use it, enrolment, verification, reset.

Administrators and practice managers must verify a code at every login; any other user may enrol, and from
then on must verify too. Until a user who needs it is verified, accounts.middleware sends every page to
the enrolment or verification page.
"""

from __future__ import annotations

import base64

import segno
from django.db import transaction
from django.http import HttpRequest
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from refloop.accounts.audit import audit_record
from refloop.accounts.roles import TWO_FACTOR_ROLES

SESSION_ENROLLED = "refloop_2fa_enrolled"  # cached per session: does this user have a confirmed device?


def confirmed_device(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def needs_second_factor(request: HttpRequest) -> bool:
    user = request.user
    if user.role in TWO_FACTOR_ROLES:
        return True
    enrolled = request.session.get(SESSION_ENROLLED)
    if enrolled is None:
        enrolled = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        request.session[SESSION_ENROLLED] = enrolled
    return enrolled


def secret_of(device: TOTPDevice) -> str:
    """The key as authenticator apps ask for it: base32, grouped by four for reading aloud or typing."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def qr_svg(device: TOTPDevice) -> str:
    """An inline SVG QR code of the otpauth:// URL: drawn here, nothing fetched from the internet."""
    return segno.make(device.config_url, error="m").svg_inline(scale=4, border=2, dark="#1f2933")


def pending_device(user) -> TOTPDevice:
    """The unconfirmed device shown during enrolment: the same secret until it is confirmed or reset."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def _check(device: TOTPDevice, token: str) -> bool:
    token = "".join(token.split())
    if not token.isdigit() or len(token) != device.digits:
        device.throttle_increment(commit=True)
        return False
    return device.verify_token(token)


def device_verify(*, request: HttpRequest, token: str) -> bool:
    """Check a code against the user's device; on success the session is verified (django_otp.login)."""
    user = request.user
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
        if device is None:
            return False
        allowed, _ = device.verify_is_allowed()
        ok = allowed and _check(device, token)
    if not ok:
        audit_record(actor=user, action="auth.otp_failed", target=user, detail={"throttled": not allowed})
        return False
    otp_login(request, device)
    request.session.cycle_key()  # a new session id once the second factor is proven
    audit_record(actor=user, action="auth.otp_verify", target=user, detail={})
    return True


def device_confirm(*, request: HttpRequest, token: str) -> bool:
    """Finish enrolment: the first correct code confirms the pending device and verifies this session."""
    user = request.user
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=False).order_by("pk").first()
        if device is None:
            return False
        allowed, _ = device.verify_is_allowed()
        ok = allowed and _check(device, token)
        if ok:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    if not ok:
        audit_record(actor=user, action="auth.otp_failed", target=user, detail={"enrolment": True})
        return False
    otp_login(request, device)
    request.session[SESSION_ENROLLED] = True
    request.session.cycle_key()
    audit_record(actor=user, action="auth.otp_enrol", target=user, detail={})
    return True


def device_reset(*, user, by) -> int:
    """Remove a user's devices (lost phone): they enrol again at their next login. Returns devices removed."""
    removed, _ = TOTPDevice.objects.filter(user=user).delete()
    audit_record(actor=by, action="auth.otp_reset", target=user, detail={"devices": removed})
    return removed
