from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "refloop.insights"
    label = "insights"
    verbose_name = "Insights"

    def ready(self) -> None:
        from refloop.insights import rollups

        rollups.connect()  # rollups follow every change to a referral, in the writer's transaction
