from django.apps import AppConfig


class OutreachConfig(AppConfig):
    name = "refloop.outreach"
    label = "outreach"
    verbose_name = "Outreach"

    def ready(self) -> None:
        from refloop.outreach import receivers, search  # noqa: F401 - connects the signal, registers timeline items
