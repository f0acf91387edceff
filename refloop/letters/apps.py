from django.apps import AppConfig


class LettersConfig(AppConfig):
    name = "refloop.letters"
    label = "letters"
    verbose_name = "Letters"

    def ready(self) -> None:
        from refloop.letters import receivers, search  # noqa: F401 - queues letters on each step, timeline items
        from refloop.letters.models import LetterRule, LetterTemplate
        from refloop.lib.hot_settings import forget_on_change

        forget_on_change(LetterRule, LetterTemplate)
