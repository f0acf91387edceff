from django.apps import AppConfig


class PracticeConfig(AppConfig):
    name = "refloop.practice"
    label = "practice"
    verbose_name = "Practice"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from refloop.lib.hot_settings import forget_on_change
        from refloop.practice import search  # noqa: F401 - registers the clinician finder
        from refloop.practice.models import Holiday, Practice, ServiceLevels

        # The users: the default owner of an intake is one of them (sla.owner_for).
        forget_on_change(ServiceLevels, Holiday, Practice, get_user_model())
