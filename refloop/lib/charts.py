"""Charts as data: a plotly figure built in Python travels to the page as JSON and is drawn by the plotly.js that
the plotly wheel ships (served from /static/plotly/plotly.min.js, never a CDN).

No inline script: the page carries the figure in a `<script type="application/json">` block (data, not code,
so the Content Security Policy allows it) and refloop/static/refloop/charts.js draws every `[data-chart]`.
A point whose `customdata` is a path ("/referrals/?...") drills down to it when clicked.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

# The same escapes Django's json_script applies, so a label can never close the script element.
_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}

BASE_LAYOUT = {
    "margin": {"l": 48, "r": 16, "t": 32, "b": 40},
    "font": {"family": "DejaVu Sans, system-ui, sans-serif", "size": 12},
    "hovermode": "closest",
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.2},
}


def figure(*traces, title: str = "", **layout) -> go.Figure:
    """A figure with the house layout; keyword arguments override it (xaxis_title=..., height=...)."""
    fig = go.Figure(data=list(traces))
    fig.update_layout(**BASE_LAYOUT)
    fig.update_layout(title={"text": title, "x": 0, "font": {"size": 14}} if title else None, **layout)
    return fig


def chart_html(fig: go.Figure, *, element_id: str, label: str) -> SafeString:
    """The markup for one chart: a labelled container and its figure as escaped JSON data."""
    spec = pio.to_json(fig, validate=False, engine="json").translate(_JSON_ESCAPES)
    data_id = f"{element_id}-data"
    return format_html(
        '<div class="chart" id="{}" data-chart="{}" role="img" aria-label="{}"></div>'
        '<script type="application/json" id="{}">{}</script>',
        element_id,
        data_id,
        label,
        data_id,
        mark_safe(spec),  # noqa: S308 - JSON with <, > and & escaped above, inside a non-executable script block
    )
