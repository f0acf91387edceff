from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "refloop.insights"
    label = "insights"
    verbose_name = "Insights"
