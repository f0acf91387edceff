"""The dashboard's figures, tables and headline numbers, built from a selectors.Dashboard.

Every chart point carries the drill-down path of the referrals behind it in `customdata`, and every chart has a
table twin with the same numbers and links, so the page works without JavaScript and tests read the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from refloop.directory.models import OtherSourceKind
from refloop.insights.models import APPOINTMENT_DAY_EDGES, CONTACT_HOUR_EDGES
from refloop.insights.selectors import Dashboard, SourceLists, bucket_label
from refloop.insights.tables import Table
from refloop.lib.charts import BASE_LAYOUT

Drill = Callable[..., str]
KIND_LABELS = {"provider": "Referring provider", **dict(OtherSourceKind.choices)}


def figure(*traces: dict, title: str = "", **layout) -> dict:
    """A plotly figure as plain data (lib.charts.figure's layout): building plotly's validated objects for eight
    charts costs over 100 ms a page, this costs microseconds, and plotly.js draws the same JSON."""
    full = dict(BASE_LAYOUT)
    if title:
        full["title"] = {"text": title, "x": 0, "font": {"size": 14}}
    full.update(layout)
    return {"data": list(traces), "layout": full}


class go:  # noqa: N801 - the trace constructors of plotly.graph_objects, as plain dicts
    @staticmethod
    def Bar(**kwargs) -> dict:  # noqa: N802
        return {"type": "bar", **kwargs}

    @staticmethod
    def Scatter(**kwargs) -> dict:  # noqa: N802
        return {"type": "scatter", **kwargs}

    @staticmethod
    def Funnel(**kwargs) -> dict:  # noqa: N802
        return {"type": "funnel", **kwargs}


@dataclass(frozen=True)
class Figure:
    fig: dict
    element_id: str
    label: str
    table: Table


@dataclass(frozen=True)
class Headline:
    label: str
    value: str
    note: str
    link: str
    slug: str


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def headline(board: Dashboard, *, drill: Drill) -> list[Headline]:
    t, ly = board.totals, board.last_year
    received = int(t["received"])
    vs_year = f"{int(ly['received']):,} the same period last year"
    if ly["received"]:
        vs_year += f" ({(received - ly['received']) / ly['received']:+.0%})"
    return [
        Headline(
            "Referrals received",
            f"{received:,}",
            f"{vs_year}; trailing average {board.trailing_average:,.1f}",
            drill(measure="received"),
            "received",
        ),
        Headline(
            "Patients seen",
            f"{int(t['seen']):,}",
            f"{_pct(t['seen'], t['received'])} of referrals received",
            drill(measure="seen"),
            "seen",
        ),  # fmt: skip
        Headline(
            "Loop closure",
            _pct(t["closed_loop"], t["seen"]),
            f"{int(t['closed_loop']):,} of {int(t['seen']):,} seen patients sent back with the report",
            drill(measure="closed_loop"),
            "closure",
        ),
        Headline(
            "Reports within target",
            _pct(board.within_target, board.turnaround.count),
            f"{board.within_target:,} of {board.turnaround.count:,} within {board.report_target} business days; "
            f"median {board.turnaround.median}, 90th percentile {board.turnaround.p90}",
            drill(measure="within_target"),
            "turnaround",
        ),
        Headline(
            "Time to first contact",
            board.contact.median,
            f"median; 90th percentile {board.contact.p90}; mean {board.contact.mean or '—'} hours",
            drill(measure="contacted"),
            "contact",
        ),
        Headline(
            "Time to appointment",
            board.appointment.median,
            f"median; 90th percentile {board.appointment.p90}; mean {board.appointment.mean or '—'} days",
            drill(measure="scheduled"),
            "appointment",
        ),
    ]


def _bar(x, y, links, name: str = "", **kwargs) -> dict:
    return go.Bar(x=x, y=y, customdata=[[link] for link in links], name=name, **kwargs)


def dashboard_figures(board: Dashboard, *, drill: Drill) -> list[Figure]:
    figures: list[Figure] = []
    t = board.totals

    months = [m for m, _ in board.series]
    labels = [f"{m:%b %Y}" for m in months]
    received = [int(row["received"]) for _, row in board.series]
    seen = [int(row["seen"]) for _, row in board.series]
    links = [drill(month=f"{m:%Y-%m}") for m in months]
    seen_links = [drill(month=f"{m:%Y-%m}", measure="seen") for m in months]
    figures.append(
        Figure(
            figure(
                _bar(labels, received, links, "Received"),
                go.Scatter(x=labels, y=seen, customdata=[[s] for s in seen_links], name="Seen", mode="lines+markers"),
                title="Referrals by month",
                height=320,
            ),
            "chart-trend",
            "Referrals received and patients seen by month",
            Table(
                "Referrals by month",
                ["Month", "Received", "Seen"],
                [[label, r, s] for label, r, s in zip(labels, received, seen, strict=True)],
                links=[[None, a, b] for a, b in zip(links, seen_links, strict=True)],
                numeric=[False, True, True],
            ),
        )
    )

    kinds = [KIND_LABELS.get(kind, kind) for kind, _ in board.by_kind]
    kind_received = [int(row["received"]) for _, row in board.by_kind]
    kind_seen = [int(row["seen"]) for _, row in board.by_kind]
    kind_links = [drill(kind=kind) for kind, _ in board.by_kind]
    kind_seen_links = [drill(kind=kind, measure="seen") for kind, _ in board.by_kind]
    figures.append(
        Figure(
            figure(
                _bar(kinds, kind_received, kind_links, "Received"),
                _bar(kinds, kind_seen, kind_seen_links, "New patients seen"),
                title="New patients by source type",
                barmode="group",
                height=300,
            ),
            "chart-source-types",
            "Referrals and new patients by source type",
            Table(
                "New patients by source type",
                ["Source type", "Received", "New patients seen"],
                [[k, r, s] for k, r, s in zip(kinds, kind_received, kind_seen, strict=True)],
                links=[[None, a, b] for a, b in zip(kind_links, kind_seen_links, strict=True)],
                numeric=[False, True, True],
            ),
        )
    )

    steps = [("received", "Received"), ("scheduled", "Scheduled"), ("seen", "Seen")]
    funnel_values = [int(t[key]) for key, _ in steps]
    funnel_links = [drill(measure=key) for key, _ in steps]
    figures.append(
        Figure(
            figure(
                go.Funnel(
                    y=[label for _, label in steps],
                    x=funnel_values,
                    customdata=[[link] for link in funnel_links],
                    textinfo="value+percent initial",
                ),
                title="Conversion",
                height=260,
            ),
            "chart-conversion",
            "Conversion from received to scheduled to seen",
            Table(
                "Conversion",
                ["Step", "Referrals", "Share of received"],
                [[label, v, _pct(v, funnel_values[0])] for (_, label), v in zip(steps, funnel_values, strict=True)],
                links=[[None, link, None] for link in funnel_links],
                numeric=[False, True, True],
            ),
        )
    )

    leak = [("declined", "Declined", int(t["declined"]))] + [
        (f"lost_{reason}", f"Lost: {label.lower()}", n) for reason, label, n in board.lost
    ]
    leak_links = [drill(measure=key) for key, _, _ in leak]
    figures.append(
        Figure(
            figure(
                _bar([label for _, label, _ in leak], [n for _, _, n in leak], leak_links, marker_color="#b4541a"),
                title="Leakage and its reasons",
                height=300,
            ),
            "chart-leakage",
            "Referrals declined or lost, by reason",
            Table(
                "Leakage",
                ["Reason", "Referrals", "Share of received"],
                [[label, n, _pct(n, t["received"])] for _, label, n in leak],
                links=[[None, link, None] for link in leak_links],
                numeric=[False, True, True],
            ),
        )
    )

    buckets = board.turnaround_buckets
    tat_labels = [bucket_label("turnaround", i) for i, _ in buckets]
    tat_links = [drill(measure="report_sent", turnaround=i) for i, _ in buckets]
    colors = ["#2f7d4f" if i <= board.report_target else "#b4541a" for i, _ in buckets]
    figures.append(
        Figure(
            figure(
                _bar(tat_labels, [n for _, n in buckets], tat_links, marker_color=colors),
                title=f"Report turnaround (target {board.report_target} business days)",
                height=300,
            ),
            "chart-turnaround",
            "Consult reports by business days from visit to report",
            Table(
                "Report turnaround",
                ["Business days from visit to report", "Reports"],
                [[label, n] for label, (_, n) in zip(tat_labels, buckets, strict=True)],
                links=[[None, link] for link in tat_links],
                numeric=[False, True],
            ),
        )
    )

    contact = [(i, int(t[f"c{i}"])) for i in range(len(CONTACT_HOUR_EDGES) + 1)]
    appointment = [(i, int(t[f"a{i}"])) for i in range(len(APPOINTMENT_DAY_EDGES) + 1)]
    contact_links = [drill(measure="contacted", contact_bucket=i) for i, _ in contact]
    appointment_links = [drill(measure="scheduled", appointment_bucket=i) for i, _ in appointment]
    figures.append(
        Figure(
            figure(
                _bar([bucket_label("contact", i) for i, _ in contact], [n for _, n in contact], contact_links),
                title="Time from receipt to first contact",
                height=280,
            ),
            "chart-contact",
            "Referrals by hours from receipt to first contact",
            Table(
                "Time to first contact",
                ["Hours from receipt", "Referrals"],
                [[bucket_label("contact", i), n] for i, n in contact],
                links=[[None, link] for link in contact_links],
                numeric=[False, True],
            ),
        )
    )
    figures.append(
        Figure(
            figure(
                _bar(
                    [bucket_label("appointment", i) for i, _ in appointment],
                    [n for _, n in appointment],
                    appointment_links,
                ),
                title="Time from receipt to appointment",
                height=280,
            ),
            "chart-appointment",
            "Referrals by days from receipt to appointment",
            Table(
                "Time to appointment",
                ["Days from receipt", "Referrals"],
                [[bucket_label("appointment", i), n] for i, n in appointment],
                links=[[None, link] for link in appointment_links],
                numeric=[False, True],
            ),
        )
    )

    payer_labels = [payer or "Not recorded" for payer, _ in board.payers]
    payer_counts = [int(row["received"]) for _, row in board.payers]
    payer_links = [drill(payer_is=payer) for payer, _ in board.payers]
    figures.append(
        Figure(
            figure(
                go.Bar(
                    y=payer_labels,
                    x=payer_counts,
                    orientation="h",
                    customdata=[[link] for link in payer_links],
                ),
                title="Payer mix",
                height=max(220, 28 * len(payer_labels) + 80),
                yaxis={"autorange": "reversed"},
            ),
            "chart-payers",
            "Referrals by payer",
            Table(
                "Payer mix",
                ["Payer", "Referrals", "Share"],
                [[label, n, _pct(n, t["received"])] for label, n in zip(payer_labels, payer_counts, strict=True)],
                links=[[None, link, None] for link in payer_links],
                numeric=[False, True, True],
            ),
        )
    )
    return figures


def source_tables(board: SourceLists, *, drill: Drill) -> list[Table]:
    """Top and moving sources (the charts' tables travel with their figures)."""
    from django.urls import reverse

    def provider_page(pk: int) -> str:
        return reverse("directory:provider", args=[pk])

    def practice_page(pk: int) -> str:
        return reverse("directory:practice", args=[pk])

    return [
        Table(
            "Top referring providers",
            ["Provider", "Referrals"],
            [[s["name"], s["received"]] for s in board.top_providers],
            links=[[provider_page(s["id"]), drill(provider=s["id"])] for s in board.top_providers],
            numeric=[False, True],
            empty="No referrals from providers in this period.",
        ),
        Table(
            "Top referring practices",
            ["Practice", "Referrals"],
            [[s["name"], s["received"]] for s in board.top_practices],
            links=[[practice_page(s["id"]), drill(practice=s["id"])] for s in board.top_practices],
            numeric=[False, True],
            empty="No referrals from practices in this period.",
        ),
        Table(
            "New sources",
            ["Provider", "Referrals"],
            [[s["name"], s["received"]] for s in board.new_sources],
            links=[[provider_page(s["id"]), drill(provider=s["id"])] for s in board.new_sources],
            numeric=[False, True],
            note="Providers whose first referral came in this period.",
            empty="No provider sent a first referral in this period.",
        ),
        Table(
            "Growing sources",
            ["Provider", "Referrals", "Period before"],
            [[s["name"], s["received"], s["before"]] for s in board.growing_sources],
            links=[[provider_page(s["id"]), drill(provider=s["id"]), None] for s in board.growing_sources],
            numeric=[False, True, True],
            note="At least 3 referrals, and half as many again as in the period just before.",
            empty="No provider grew by half or more against the period before.",
        ),
    ]
