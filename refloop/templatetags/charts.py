from django import template

from refloop.lib.charts import chart_html

register = template.Library()


@register.simple_tag
def chart(fig, element_id: str, label: str = "Chart"):
    """`{% chart fig "referrals-by-month" "Referrals by month" %}`: see refloop.lib.charts."""
    return chart_html(fig, element_id=element_id, label=label)
