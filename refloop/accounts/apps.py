from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "refloop.accounts"
    label = "accounts"
    verbose_name = "Accounts"
