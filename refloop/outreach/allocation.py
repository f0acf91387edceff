"""Splitting a cost into parts that add up to it exactly, to the cent (the ledger never holds a float).

Largest remainder: each part gets the whole cents of its exact share, and the cents left over go one each to
the parts with the largest fractional remainders (ties to the earlier part), so the parts always sum to the
total and no part differs from its exact share by a cent or more.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> int:
    """Whole cents of an amount given in dollars; refuses fractions of a cent rather than rounding silently."""
    if not isinstance(amount, Decimal):
        raise TypeError("money is a Decimal, never a float")
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} has a fraction of a cent")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def split_cents(total_cents: int, weights: Sequence[int]) -> list[int]:
    """`total_cents` split in proportion to whole-number `weights` (largest remainder)."""
    if total_cents < 0:
        raise ValueError("cannot split a negative amount")
    if not weights or any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("weights must be non-negative and not all zero")
    whole = sum(weights)
    parts = [total_cents * w // whole for w in weights]
    remainders = [total_cents * w % whole for w in weights]
    left = total_cents - sum(parts)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        parts[index] += 1
    return parts


def split_amount(total: Decimal, count: int) -> list[Decimal]:
    """`total` dollars shared equally among `count` people, the odd cents to the first ones."""
    return [from_cents(c) for c in split_cents(to_cents(total), [1] * count)]
