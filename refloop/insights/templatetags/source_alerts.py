"""The early-warning block the directory's provider and practice pages include: open alerts and their chart."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go
from django import template

from refloop.directory.models import ReferringPractice, ReferringProvider
from refloop.insights.models import SourceAlert
from refloop.lib.charts import figure

register = template.Library()


@register.simple_tag
def open_alerts_for(entry) -> list[SourceAlert]:
    """{% open_alerts_for provider as alerts %}: the source's open alerts, the surest first."""
    if isinstance(entry, ReferringProvider):
        qs = SourceAlert.objects.filter(provider=entry)
    elif isinstance(entry, ReferringPractice):
        qs = SourceAlert.objects.filter(practice=entry)
    else:
        return []
    return list(qs.filter(resolved_at__isnull=True).select_related("follow_up", "follow_up__owner"))


@register.simple_tag
def expected_vs_actual(alert: SourceAlert) -> go.Figure | None:
    """Weekly referrals against what the source's usual rate and the practice's season lead one to expect."""
    evidence = alert.evidence or {}
    weeks, actual, expected = evidence.get("weeks"), evidence.get("actual"), evidence.get("expected")
    if not weeks or not actual or not expected:
        return None
    fig = figure(
        go.Bar(x=weeks, y=actual, name="Referrals received", marker_color="#5b7fa6"),
        go.Scatter(x=weeks, y=expected, name="Expected (usual rate x season)", mode="lines",
                   line={"color": "#c0392b", "width": 2}),  # fmt: skip
        height=280,
        yaxis_title="Referrals a week",
        bargap=0.15,
    )
    since = alert.since.isoformat() if isinstance(alert.since, dt.date) else str(alert.since)
    if weeks[0] <= since <= weeks[-1]:
        fig.add_vline(x=since, line_dash="dot", line_color="#555")
        fig.add_annotation(x=since, y=1, yref="paper", text="since", showarrow=False, xanchor="left")
    return fig


@register.filter
def percent_change(value: float) -> str:
    """-0.62 -> "62% down"; 0.8 -> "80% up"."""
    if value is None:
        return ""
    return f"{abs(value):.0%} {'down' if value < 0 else 'up'}"
