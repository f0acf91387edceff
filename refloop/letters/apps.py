from django.apps import AppConfig


class LettersConfig(AppConfig):
    name = "refloop.letters"
    label = "letters"
    verbose_name = "Letters"

    def ready(self) -> None:
        from refloop.letters import receivers, search  # noqa: F401 - queues letters on each step, timeline items
