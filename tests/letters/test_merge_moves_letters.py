"""Merging duplicate directory records moves their letters and status links to the record kept."""

from __future__ import annotations

import pytest

from refloop.directory.merge import practice_merge, provider_merge
from refloop.letters import services
from refloop.letters.models import Letter, LetterKind, StatusLink
from tests.directory.factories import practice
from tests.letters.factories import emailing_provider

pytestmark = pytest.mark.django_db


def test_a_duplicate_providers_letters_move_to_the_record_kept(users):
    keep, remove = emailing_provider(), emailing_provider(last_name="Castelanos")
    letter = services.letter_create(kind=LetterKind.FREE, provider=remove, text="Thank you for visiting us.")
    provider_merge(keep=keep, remove=remove, by=users["manager"])
    assert Letter.objects.get(pk=letter.pk).provider == keep


def test_a_duplicate_offices_status_links_move_to_the_office_kept(users):
    keep, remove = practice(name="Dublin Family Medicine"), practice(name="Dublin Family Med", npi="")
    link, token = services.status_link_create(practice=remove, by=None)
    practice_merge(keep=keep, remove=remove, by=users["manager"])
    assert StatusLink.objects.by_token(token).practice == keep
