"""A real browser opens every page holding stored script payloads and none of them runs."""

from __future__ import annotations

import pytest

from tests.accounts.xss import pages, plant
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_no_stored_payload_runs_in_the_browser(users, new_page):
    records = plant(users)
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    # the payload renamed the users; log in by username, which keeps its value
    log_in(page, "admin", PASSWORD)
    assert "/account/two-factor/" not in page.url
    for url in pages(records):
        response = page.goto(url)
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__xss") is None, f"a payload ran on {url}"
    assert dialogs == []
    # and the payload is there as text, so the check above looked at pages that carry it
    page.goto(f"/referrals/{records['referral'].pk}/")
    assert "<script>window.__xss=1</script>" in page.content().replace("&lt;", "<").replace("&gt;", ">")
