"""An insights table exports to CSV and XLSX exactly as shown, with no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from openpyxl import load_workbook

from refloop.accounts.models import AuditEvent
from refloop.insights.tables import Table, table_export, table_export_for

pytestmark = pytest.mark.django_db


def _table(**extra) -> Table:
    return Table(
        title="Top sources: May 2026",
        columns=["Source", "Referrals", "Lift", "Since"],
        rows=[
            ['=HYPERLINK("http://evil","x")', 12, -3.5, dt.date(2026, 5, 1)],
            ["@SUM(A1)", 0, None, dt.date(2026, 5, 2)],
            ["Dr. Plain\x07", 7, 1.25, dt.date(2026, 5, 3)],
        ],
        links=[["/directory/providers/1/", None, None, None], [None, None, None, None], [None, None, None, None]],
        **extra,
    )


def test_csv_neutralizes_text_and_keeps_numbers_as_numbers():
    response = table_export(_table(), "csv")
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="refloop-top-sources-may-2026-' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Source", "Referrals", "Lift", "Since"]
    assert rows[1] == ['\'=HYPERLINK("http://evil","x")', "12", "-3.5", "2026-05-01"]
    assert rows[2] == ["'@SUM(A1)", "0", "", "2026-05-02"]


def test_xlsx_holds_no_formula_and_typed_numbers_and_dates():
    response = table_export(_table(), "xlsx")
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == "Top sources  May 2026"
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[1][0] == '\'=HYPERLINK("http://evil","x")'
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert values[1][1] == 12 and values[1][2] == -3.5
    assert values[1][3].date() == dt.date(2026, 5, 1)
    assert values[2][2] is None
    assert values[3][0] == "Dr. Plain"  # a control character the XML cannot carry is dropped, not a 500


def test_a_table_without_phi_is_not_audited_and_one_with_phi_is(users):
    exports = AuditEvent.objects.filter(action="insights.export")
    table_export(_table(), "csv")
    assert exports.count() == 0
    with pytest.raises(ValueError, match="needs an actor"):
        table_export(_table(phi=True), "xlsx")
    table_export(_table(phi=True), "xlsx", actor=users["manager"])
    event = exports.get()
    assert (event.actor, event.action) == (users["manager"], "insights.export")
    assert event.detail == {"table": "Top sources: May 2026", "format": "xlsx", "rows": 3}


def test_an_unknown_format_is_refused_by_name():
    with pytest.raises(ValueError, match="'pdf'"):
        table_export(_table(), "pdf")
    request = RequestFactory().get("/insights/x/", {"export": "pdf"})
    response = table_export_for(request, _table())
    assert response.status_code == 400 and b"pdf" in response.content
    assert table_export_for(RequestFactory().get("/insights/x/"), _table()) is None


def test_a_ragged_row_is_refused_naming_the_row():
    with pytest.raises(ValueError, match="row 2 has 1 cells, expected 2"):
        Table(title="t", columns=["a", "b"], rows=[[1, 2], [3]])


def test_the_partial_shows_values_links_and_export_links():
    html = render_to_string("insights/table.html", {"table": _table(export_url="/insights/top/?month=2026-05")})
    assert '<a href="/directory/providers/1/">=HYPERLINK' in html
    assert "/insights/top/?month=2026-05&amp;export=csv" in html
    assert "/insights/top/?month=2026-05&amp;export=xlsx" in html
    assert "-3.5" in html and "—" in html
    empty = render_to_string("insights/table.html", {"table": Table(title="t", columns=["a"], rows=[], empty="None.")})
    assert "None." in empty and "export=csv" not in empty


def test_a_long_table_shows_its_first_rows_and_exports_them_all():
    table = Table(title="Long", columns=["n"], rows=[[i] for i in range(120)], page_rows=50, export_url="/x/")
    html = render_to_string("insights/table.html", {"table": table})
    assert html.count("<tr>") == 51  # the header and 50 rows
    assert "The first 50 of 120 rows; the CSV and XLSX hold them all." in html
    assert table_export(table, "csv").content.decode().count("\r\n") == 121
