from __future__ import annotations

from django.core.management import BaseCommand, call_command

from refloop import demo
from refloop.demo.frame import LOGINS


class Command(BaseCommand):
    help = "Migrate, load the demo practice (once), print the logins, and serve it."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="load the demo practice and stop")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--scale", choices=["small", "tiny"], default="small", help="tiny is for tests")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, no_serve: bool, seed: int, scale: str, host: str, port: int, **options):
        call_command("migrate", interactive=False, verbosity=0)
        context = demo.load(seed=seed, scale=scale)
        if context is None:
            self.stdout.write("The demo practice is already loaded; nothing was added.")
        else:
            made = ", ".join(f"{n} {name}" for name, n in context.created.items())
            self.stdout.write(f"Loaded the demo practice (seed {seed}): {made}.")
            links = context.objects.get("status_links") or []
            if links:
                self.stdout.write("  Referrer status links (shown once; only their hashes are stored):")
                for practice, token in list(links)[:3]:
                    self.stdout.write(f"    {practice}: http://{host}:{port}/r/{token}/")
        self._print_logins(host, port)
        if not no_serve:
            call_command("serve", host=host, port=port)

    def _print_logins(self, host: str, port: int) -> None:
        self.stdout.write("")
        self.stdout.write(
            f"  Open http://{host}:{port}/ and log in as one of (password: {demo.DEMO_PASSWORD}):"
        )
        seen_roles = set()
        for username, role, *_ in LOGINS:
            if role in seen_roles:
                continue
            seen_roles.add(role)
            self.stdout.write(f"    {role.label:<22} {username}")
        self._print_second_factors()
        self.stdout.write("")

    def _print_second_factors(self) -> None:
        """Administrators and managers must give a TOTP code: give the demo ones a device and print its secret."""
        from django.contrib.auth import get_user_model
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from refloop.accounts.roles import TWO_FACTOR_ROLES
        from refloop.accounts.two_factor import secret_of

        required = [(u, r) for u, r, *_ in LOGINS if r in TWO_FACTOR_ROLES]
        if not required:
            return
        self.stdout.write("")
        self.stdout.write("  Administrators and managers also enter a code from an authenticator app. Add this demo")
        self.stdout.write("  secret key to the app (Google Authenticator, FreeOTP, 1Password: 'enter a setup key'):")
        users = get_user_model().objects.filter(username__in=[u for u, _ in required])
        for user in users.order_by("username"):
            device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
            if device is None:
                device = TOTPDevice.objects.create(user=user, name="Demo authenticator", confirmed=True)
            self.stdout.write(f"    {user.username:<22} {secret_of(device)}")
