from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "refloop.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from refloop.accounts import security_events
        from refloop.accounts.middleware import forget_idle_seconds

        security_events.connect()
        post_save.connect(forget_idle_seconds, sender="practice.SecuritySettings", dispatch_uid="refloop_idle")
