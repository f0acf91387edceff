"""The demo practice: realistic, deterministic data created through the product's own services.

Each part of the product adds its own step to `STEPS`, so demo data is always data the product itself could
have produced. `load` is idempotent: a database that already holds the demo practice is left as it is.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from faker import Faker

from refloop.practice.models import Practice

DEMO_PASSWORD = "refloop-demo"  # noqa: S105 - the published password of the demo logins, shown on screen


@dataclass(frozen=True)
class Scale:
    name: str
    years: int
    referring_providers: int
    referring_practices: int
    referrals: int
    activities: int
    bulk: bool = False  # directory and outreach history written in bulk (refloop/demo/bulk.py), not by services


SCALES = {
    # For the test suite: every step runs, in seconds.
    "tiny": Scale("tiny", years=1, referring_providers=60, referring_practices=25, referrals=600, activities=120),
    "small": Scale(
        "small", years=3, referring_providers=600, referring_practices=250, referrals=20_000, activities=6_000
    ),
    "large": Scale(
        "large",
        years=5,
        referring_providers=25_000,
        referring_practices=10_000,
        referrals=1_000_000,
        activities=300_000,
        bulk=True,
    ),
}


@dataclass
class DemoContext:
    """What the steps share: the seeded randomness, the scale, and what earlier steps created."""

    seed: int
    scale: Scale
    rng: random.Random
    fake: Faker
    created: dict[str, int] = field(default_factory=dict)
    objects: dict[str, object] = field(default_factory=dict)

    def count(self, name: str, n: int) -> None:
        self.created[name] = self.created.get(name, 0) + n


Step = Callable[[DemoContext], None]


def _steps() -> list[Step]:
    from refloop.demo import directory, frame, letters, outreach, referrals, rollups
    from refloop.insights.scan import demo_build as early_warning

    return [frame.build, directory.build, referrals.build, letters.build, outreach.build, rollups.build, early_warning]


def is_loaded() -> bool:
    return Practice.objects.exists()


def load(*, seed: int = 2026, scale: str = "small") -> DemoContext | None:
    """Create the demo practice; None when the database already has a practice (nothing is duplicated)."""
    if is_loaded():
        return None
    fake = Faker("en_US")
    fake.seed_instance(seed)
    context = DemoContext(seed=seed, scale=SCALES[scale], rng=random.Random(seed), fake=fake)
    for step in _steps():
        with transaction.atomic():
            step(context)
    return context
