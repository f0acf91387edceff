"""`refloop apikey create NAME --scope referrals.view --scope referrals.edit` prints the new key once;
`refloop apikey list` shows every key (never a secret); `refloop apikey revoke NAME` stops a key working."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from refloop.accounts.roles import MATRIX
from refloop.interop.apikeys import apikey_create, apikey_revoke
from refloop.interop.models import ApiKey


class Command(BaseCommand):
    help = "Create, list and revoke the API keys integrations send as `Authorization: Bearer KEY`."

    def add_arguments(self, parser):
        verbs = parser.add_subparsers(dest="verb", required=True, metavar="{create,list,revoke}")
        create = verbs.add_parser("create", help="Create a key and print it (it is shown only this once).")
        create.add_argument("name", help="The integration that will use the key.")
        create.add_argument(
            "--scope",
            action="append",
            default=[],
            metavar="ACTION",
            help=f"An action the key may do (repeat for more): {', '.join(MATRIX)}.",
        )
        verbs.add_parser("list", help="List the keys with their scopes; secrets are never shown.")
        revoke = verbs.add_parser("revoke", help="Revoke a key: it stops working at once.")
        revoke.add_argument("name")

    def handle(self, *args, verb: str, **options):
        if verb == "create":
            if not options["scope"]:
                raise CommandError("Give at least one --scope (an action of the permission matrix).")
            try:
                key, secret = apikey_create(name=options["name"], scopes=options["scope"])
            except ValidationError as exc:
                raise CommandError(" ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
            self.stderr.write(f"Created the key {key.name!r} with scopes {', '.join(key.scopes)}.")
            self.stderr.write("Copy it now: it is shown only this once.")
            self.stdout.write(secret)
        elif verb == "list":
            for key in ApiKey.objects.all():
                status = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
                used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never used"
                self.stdout.write(f"{key.name}\t{key.prefix}…\t{status}\t{used}\t{','.join(key.scopes)}")
        else:
            key = ApiKey.objects.filter(name=options["name"]).first()
            if key is None:
                raise CommandError(f"No API key is named {options['name']!r} (see `refloop apikey list`).")
            apikey_revoke(key=key)
            self.stdout.write(f"Revoked the key {key.name!r}.")
