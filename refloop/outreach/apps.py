from django.apps import AppConfig


class OutreachConfig(AppConfig):
    name = "refloop.outreach"
    label = "outreach"
    verbose_name = "Outreach"

    def ready(self) -> None:
        from refloop.lib.hot_settings import forget_on_change
        from refloop.outreach import receivers, search  # noqa: F401 - connects the signal, registers timeline items
        from refloop.outreach.models import OutreachSettings

        forget_on_change(OutreachSettings)
