"""Merging duplicate directory records carries every outreach row along (activities, attendance, the ledger,
overrides, repayments, concerns, follow-ups, territory history), and reversing the merge puts them back."""

from __future__ import annotations

import pytest

from refloop.directory.merge import merge_reverse, practice_merge, provider_merge
from refloop.directory.models import ReferringPractice, ReferringProvider
from tests.directory.factories import practice, provider
from tests.outreach.factories import MERGE_PLANTERS

pytestmark = pytest.mark.django_db


def _outreach_relations(model) -> list[tuple[type, str]]:
    return [
        (rel.related_model, rel.field.name)
        for rel in model._meta.get_fields(include_hidden=True)
        if rel.auto_created
        and not rel.concrete
        and rel.related_model._meta.app_label == "outreach"
        and not rel.many_to_many
    ]


def _rows(entry) -> dict[str, set[int]]:
    return {
        f"{model._meta.label}.{name}": set(model._base_manager.filter(**{name: entry}).values_list("pk", flat=True))
        for model, name in _outreach_relations(type(entry))
    }


def _plant(entry) -> None:
    for model, name in _outreach_relations(type(entry)):
        MERGE_PLANTERS[f"{model._meta.label}.{name}"](entry)


@pytest.mark.parametrize("kind", ["provider", "practice"])
def test_every_outreach_row_moves_with_the_merge_and_comes_back_on_reversal(kind, users):
    make = provider if kind == "provider" else practice
    keep, remove = make(), make()
    relations = _outreach_relations(ReferringProvider if kind == "provider" else ReferringPractice)
    assert relations and all(f"{m._meta.label}.{n}" in MERGE_PLANTERS for m, n in relations)
    _plant(remove)
    before = _rows(remove)
    assert all(before.values()), before

    merge = (provider_merge if kind == "provider" else practice_merge)(keep=keep, remove=remove, by=users["manager"])
    assert _rows(remove) == {name: set() for name in before}
    assert all(before[name] <= ids for name, ids in _rows(keep).items())

    merge_reverse(merge=merge, by=users["manager"])
    assert _rows(remove) == before
