"""Roles and what each may do: the one permission matrix every page, API call and export consults.

A role is a job in the practice, not a bundle of Django permissions: staff understand "the liaison can log
visits but cannot read clinical notes", and an auditor can read this file to see exactly that.
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    MANAGER = "manager", "Practice manager"
    COORDINATOR = "coordinator", "Referral coordinator"
    LIAISON = "liaison", "Physician liaison"
    CLINICIAN = "clinician", "Clinician"


A, M, C, L, K = Role.ADMIN, Role.MANAGER, Role.COORDINATOR, Role.LIAISON, Role.CLINICIAN

# action -> roles allowed. Actions are "<area>.<verb>"; a view names exactly one.
MATRIX: dict[str, frozenset[Role]] = {
    "referrals.view": frozenset({A, M, C, K}),
    "referrals.edit": frozenset({A, M, C}),
    "referrals.import": frozenset({A, M, C}),
    "directory.view": frozenset({A, M, C, L, K}),
    "directory.edit": frozenset({A, M, C, L}),
    "directory.merge": frozenset({A, M, C}),
    "directory.export": frozenset({A, M, C, L}),
    "outreach.view": frozenset({A, M, L}),
    "outreach.edit": frozenset({A, M, L}),
    "compliance.view": frozenset({A, M, L}),
    "compliance.override": frozenset({A, M}),
    "compliance.limits": frozenset({A}),
    "letters.view": frozenset({A, M, C, K}),
    "letters.send": frozenset({A, M, C, K}),
    "letters.edit": frozenset({A, M}),
    "letters.links": frozenset({A, M, C}),
    "reports.write": frozenset({A, C, K}),
    "reports.sign": frozenset({A, K}),
    "insights.view": frozenset({A, M}),
    "insights.export": frozenset({A, M}),
    "insights.scorecards": frozenset({A, M, L}),
    "insights.alerts": frozenset({A, M, L}),  # early-warning alerts on a source's page
    "interop.review": frozenset({A, M, C}),
    "apikeys.manage": frozenset({A}),
    "audit.view": frozenset({A}),
    "settings.view": frozenset({A, M}),
    "settings.edit": frozenset({A, M}),
    "users.manage": frozenset({A}),
    "search.use": frozenset({A, M, C, L, K}),
}

# The navigation: (label, url name, action that reveals it). Order is the order on screen.
NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("Referrals", "referrals:home", "referrals.view"),
    ("Directory", "directory:home", "directory.view"),
    ("Letters", "letters:home", "letters.view"),
    ("Outreach", "outreach:home", "outreach.view"),
    ("Insights", "insights:home", "insights.view"),
    ("Settings", "practice:settings", "settings.view"),
)

# Where each role lands after login: the first section it works in every day.
HOME_FOR_ROLE: dict[str, str] = {
    A: "practice:settings",
    M: "insights:home",
    C: "referrals:home",
    L: "outreach:home",
    K: "referrals:home",
}

# Roles that must use a second factor (TOTP) at every login; any other user who enrols a device must use it too.
TWO_FACTOR_ROLES: frozenset[str] = frozenset({A, M})


def role_can(role: str | None, action: str) -> bool:
    if action not in MATRIX:
        raise KeyError(f"unknown action {action!r}: add it to accounts.roles.MATRIX")
    return role is not None and role in MATRIX[action]
