"""Every user-entered text is escaped: script payloads stored in every text field never reach a page as markup."""

from __future__ import annotations

import pytest

from tests.accounts.xss import PAYLOAD, RAW_MARKERS, pages, plant

pytestmark = pytest.mark.django_db


def test_no_page_carries_a_stored_payload_as_markup(client_as, users):
    records = plant(users)
    assert records["planted"] > 50  # the payload went into many fields of many models
    client = client_as("admin")
    shown = 0
    for url in pages(records):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for marker in RAW_MARKERS:
            assert marker not in html, f"{url} shows {marker!r} unescaped"
        shown += html.count("&lt;script&gt;window.__xss")
    assert shown > 10  # the payloads are on the pages, as text


def test_the_payload_is_shown_as_text_on_the_referral_page(client_as, users):
    records = plant(users)
    html = client_as("admin").get(f"/referrals/{records['referral'].pk}/").content.decode()
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert PAYLOAD not in html
