from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "refloop.directory"
    label = "directory"
    verbose_name = "Directory"
