"""Shared builders for the JSON API tests: keys with chosen scopes, and a small seeded practice."""

from __future__ import annotations

from dataclasses import dataclass

from django.test import Client

from refloop.accounts.roles import MATRIX
from refloop.interop.apikeys import apikey_create
from tests.outreach.factories import office
from tests.referrals import factories as referral_factories


def key_client(*scopes: str, name: str = "") -> Client:
    """A client sending a fresh API key with these scopes (every action of the matrix when none given)."""
    key, raw = apikey_create(name=name or f"test-key-{'-'.join(scopes) or 'all'}", scopes=list(scopes or MATRIX))
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.key = key
    return client


@dataclass
class World:
    office: object
    referral: object
    location: object
    clinician: object
    concern: object


def world(*, by=None) -> World:
    """One referring office (practice, physicians, staff), a referral from it, a location and a clinician."""
    from refloop.outreach import services as outreach_services

    where = office(physicians=2, staff=2)
    referral = referral_factories.referral(source=where.physicians[0], by=by)
    concern = outreach_services.concern_open(practice=where.practice, summary="Report was late", by=by)
    return World(
        office=where,
        referral=referral,
        location=referral_factories.location(),
        clinician=referral_factories.clinician(),
        concern=concern,
    )
