"""The insights pages are reachable from where their readers work: managers from the dashboard, liaisons from
Outreach (their own scorecard), not only by typing an address."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_dashboard_links_to_scorecards_effectiveness_and_monthly_reports(client_as):
    page = client_as("manager").get("/insights/").content.decode()
    for path in ("/insights/scorecards/", "/insights/effectiveness/", "/insights/reports/"):
        assert f'href="{path}"' in page, path


def test_a_liaison_finds_their_scorecard_from_outreach_and_it_opens(client_as):
    client = client_as("liaison")
    page = client.get("/outreach/").content.decode()
    assert 'href="/insights/scorecards/"' in page and "My scorecard" in page
    response = client.get("/insights/scorecards/", follow=True)
    assert response.status_code == 200

