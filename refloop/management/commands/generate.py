from __future__ import annotations

from django.core.management import BaseCommand, CommandError

from refloop import demo


class Command(BaseCommand):
    help = (
        "Generate a practice's data at a given scale into the configured database (for benchmarks). The large "
        "scale (DESIGN.md: 25,000 providers, 1,000,000 referrals, 300,000 activities) is written in bulk and takes "
        "minutes; the benchmarks keep a built copy per database (bench/dataset.py)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scale", choices=sorted(demo.SCALES), default="small")
        parser.add_argument("--seed", type=int, default=2026)

    def handle(self, *args, scale: str, seed: int, **options):
        context = demo.load(seed=seed, scale=scale)
        if context is None:
            raise CommandError("This database already holds a practice; generate into an empty database.")
        made = ", ".join(f"{n} {name}" for name, n in context.created.items())
        self.stdout.write(f"Generated the {scale} practice (seed {seed}): {made}.")
