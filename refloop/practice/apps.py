from django.apps import AppConfig


class PracticeConfig(AppConfig):
    name = "refloop.practice"
    label = "practice"
    verbose_name = "Practice"

    def ready(self) -> None:
        from refloop.practice import search  # noqa: F401 - registers the clinician finder
