from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "refloop.interop"
    label = "interop"
    verbose_name = "Interoperability"

    def ready(self) -> None:
        from refloop.interop.hl7 import outbound  # noqa: F401 - writes the HL7 status message of each step
