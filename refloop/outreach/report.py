"""The yearly compliance report: every physician's items of value for a calendar year, as PDF and as CSV.

The compliance officer files the PDF; the CSV goes into their spreadsheet, written through lib.csvsafe so no
cell (a practice name typed as "=HYPERLINK(...)") can run as a formula.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.template.loader import render_to_string

from refloop.directory.models import ReferringProvider
from refloop.lib.csvsafe import csv_text
from refloop.outreach import compliance
from refloop.outreach.models import ComplianceOverride, LedgerEntry, StarkLimit


@dataclass(frozen=True)
class ReportSection:
    summary: compliance.PhysicianYear
    entries: list[LedgerEntry]
    overrides: list[ComplianceOverride]


def yearly_report(year: int, *, physician: ReferringProvider | None = None) -> list[ReportSection]:
    summaries = compliance.year_summary(year, physicians=[physician.pk] if physician is not None else None)
    ids = [s.physician.pk for s in summaries]
    entries: dict[int, list[LedgerEntry]] = {pk: [] for pk in ids}
    for entry in (
        LedgerEntry.objects.filter(year=year, physician_id__in=ids)
        .select_related("activity", "activity__practice")
        .order_by("on", "pk")
    ):
        entries[entry.physician_id].append(entry)
    overrides: dict[int, list[ComplianceOverride]] = {pk: [] for pk in ids}
    for override in ComplianceOverride.objects.filter(year=year, physician_id__in=ids).select_related("by"):
        overrides[override.physician_id].append(override)
    summaries.sort(key=lambda s: (s.physician.last_name.lower(), s.physician.first_name.lower(), s.physician.pk))
    return [ReportSection(s, entries[s.physician.pk], overrides[s.physician.pk]) for s in summaries]


REPORT_HEADER = [
    "Year",
    "Physician",
    "NPI",
    "Credentials",
    "Date",
    "Activity",
    "Practice",
    "Item",
    "Shared by",
    "Amount",
    "Physician year total",
    "Year limit",
    "% of limit",
    "Status",
    "Override reasons",
]


def report_csv(year: int, sections: list[ReportSection]) -> str:
    def rows():
        for section in sections:
            s = section.summary
            reasons = " | ".join(f"{o.at:%Y-%m-%d} {o.by}: {o.reason}" for o in section.overrides)
            for entry in section.entries:
                yield [
                    year,
                    s.physician.display_name,
                    s.physician.npi,
                    s.physician.credentials,
                    entry.on.isoformat(),
                    entry.activity.get_kind_display(),
                    entry.activity.practice.name if entry.activity.practice else "",
                    entry.item,
                    entry.shared_by,
                    f"{entry.amount:.2f}",
                    f"{s.total:.2f}",
                    f"{s.limit:.2f}" if s.limit is not None else "no figure on file",
                    f"{s.percent}" if s.percent is not None else "",
                    s.status,
                    reasons,
                ]

    return csv_text(REPORT_HEADER, rows())


def report_pdf(year: int, sections: list[ReportSection], *, generated_by, now: dt.datetime) -> bytes:
    from weasyprint import CSS, HTML  # heavy import: only when a PDF is asked for

    context = {
        "year": year,
        "sections": sections,
        "limit": StarkLimit.objects.filter(year=year).first(),
        "generated_by": generated_by,
        "now": now,
        "total": sum((s.summary.total for s in sections), compliance.ZERO),
    }
    html = render_to_string("outreach/compliance_report.html", context)
    css = render_to_string("outreach/compliance_report.css", context)
    return HTML(string=html).write_pdf(stylesheets=[CSS(string=css)])
