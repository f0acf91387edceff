from django.apps import AppConfig


class RefloopConfig(AppConfig):
    """The project package itself, installed so its management commands (serve, worker, demo) load."""

    name = "refloop"
    verbose_name = "refloop"
