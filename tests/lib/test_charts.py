import json
import re

from django.test import Client

from refloop.lib.charts import chart_html, figure


def test_a_chart_carries_its_figure_as_json_that_cannot_close_the_script_block():
    import plotly.graph_objects as go

    fig = figure(go.Bar(x=["</script><script>alert(1)</script>"], y=[3], customdata=["/referrals/?q=1&x=2"]))
    html = str(chart_html(fig, element_id="c1", label="Referrals"))
    assert 'data-chart="c1-data"' in html
    body = re.search(r'<script type="application/json" id="c1-data">(.*)</script>', html, re.S).group(1)
    assert "</script" not in body and "<script" not in body
    spec = json.loads(body)
    assert spec["data"][0]["x"] == ["</script><script>alert(1)</script>"]
    assert spec["data"][0]["customdata"] == ["/referrals/?q=1&x=2"]


def test_plotly_js_is_served_from_the_wheel_not_a_cdn(db):
    response = Client().get("/static/plotly/plotly.min.js")
    assert response.status_code == 200
    assert b"plotly.js" in b"".join(response.streaming_content)[:2000]
