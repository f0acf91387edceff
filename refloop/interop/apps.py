from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "refloop.interop"
    label = "interop"
    verbose_name = "Interoperability"
