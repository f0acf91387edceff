from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    name = "refloop.referrals"
    label = "referrals"
    verbose_name = "Referrals"

    def ready(self) -> None:
        from refloop.referrals import search  # noqa: F401 - registers the patient finder and source timelines
