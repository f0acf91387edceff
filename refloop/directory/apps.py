from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "refloop.directory"
    label = "directory"
    verbose_name = "Directory"

    def ready(self) -> None:
        from refloop.directory import search  # noqa: F401 - registers search finders and timeline items
