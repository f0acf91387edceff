"""Merging a duplicate directory record into the one kept, and reversing that merge exactly.

Referrals, activities and letters point at providers and practices from apps written after this one, so a
merge does not list what it moves: it asks Django for every ForeignKey and OneToOneField that points at the
model (hidden ones and automatic many-to-many tables included) and moves their rows to the record kept. Where
a moved row would break a unique constraint (both providers already hold taxonomy 207Q00000X), the kept
record's row stays and the duplicate's row is deleted, serialized into the Merge first so reversal recreates
it with its own id. The removed record is never deleted: it stays, marked merged and inactive, so that old
links still resolve and reversal puts back exactly what was there.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core import serializers
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.db.models import Field, ForeignKey, Model, ProtectedError, RestrictedError, UniqueConstraint
from django.db.models.deletion import Collector
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.directory.models import Merge, ReferringPractice, ReferringProvider
from refloop.directory.services import _refresh_search_text

if TYPE_CHECKING:
    from refloop.accounts.models import User

Entry = ReferringProvider | ReferringPractice

MODELS: dict[str, type[Entry]] = {
    Merge.Kind.PROVIDER: ReferringProvider,
    Merge.Kind.PRACTICE: ReferringPractice,
}

# Bookkeeping a merge must not copy from the duplicate: merge state, import provenance, the NPPES
# deactivation that belongs with the record's own NPI. `last_referral_on` is taken as the later of the two.
NOT_FILLED = {"merged_into", "is_active", "deactivated_on", "source", "manual_fields", "last_referral_on"}
# Filled only as a whole: a street from one record with the city of the other is nobody's address.
FILLED_TOGETHER = [("address_line1", "address_line2", "city", "state", "postal_code")]
# Relations where a record has at most one row flagged primary: rows moved in lose the flag when the kept
# record already has a primary one (reversal gives it back).
ONE_PRIMARY = {
    ("directory.practicelocation", "practice"),
    ("directory.providerpractice", "provider"),
    ("directory.providertaxonomy", "provider"),
}
CHUNK = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit


class MergeRefused(Exception):
    """The merge or reversal asked for would be wrong; the message says why, in words for the user."""


def provider_merge(*, keep: ReferringProvider, remove: ReferringProvider, by: User | None) -> Merge:
    """Merge provider `remove` into `keep`: its referrals, activities, letters, affiliations and taxonomies
    move to `keep`, its values fill `keep`'s blanks, and it stays behind as merged."""
    return _merge(Merge.Kind.PROVIDER, keep=keep, remove=remove, by=by)


def practice_merge(*, keep: ReferringPractice, remove: ReferringPractice, by: User | None) -> Merge:
    """Merge practice `remove` into `keep`, with its locations, staff contacts, affiliations and referrals."""
    return _merge(Merge.Kind.PRACTICE, keep=keep, remove=remove, by=by)


def relations(model: type[Model]) -> list[ForeignKey]:
    """Every ForeignKey or OneToOneField, of any model, that points at `model`, except `merged_into`.

    `_meta.related_objects` leaves out hidden relations (related_name="+") and the tables Django makes for a
    plain ManyToManyField; a row missed here would stay behind on the removed record, so those count too.
    A ManyToManyRel itself is skipped: its rows are those of its through table, found as a ForeignKey.
    """
    found = []
    for rel in model._meta.get_fields(include_hidden=True):
        if not rel.auto_created or rel.concrete or rel.many_to_many:
            continue
        fk = rel.field
        if (rel.related_model is model and fk.name == "merged_into") or fk.remote_field.parent_link:
            continue
        found.append(fk)
    return found


def related_counts(entry: Entry) -> list[tuple[str, int]]:
    """(label, number of rows) for each relation of `entry`, for showing what a merge will move."""
    counts = []
    for fk in relations(type(entry)):
        name = fk.remote_field.related_name or ""
        label = name.replace("_", " ") if name and not name.endswith("+") else ""
        label = label or str(fk.model._meta.verbose_name_plural)
        counts.append((label.capitalize(), fk.model._base_manager.filter(**{fk.name: entry}).count()))
    return counts


def _merge(kind: str, *, keep: Entry, remove: Entry, by: User | None) -> Merge:
    model = MODELS[kind]
    if not isinstance(keep, model) or not isinstance(remove, model):
        raise MergeRefused(f"A {kind} can only be merged with another {kind}.")
    if keep.pk == remove.pk:
        raise MergeRefused("A record cannot be merged into itself.")
    with transaction.atomic():
        keep, remove = _lock(model, keep.pk, remove.pk)
        if keep.merged_into_id:
            raise MergeRefused(f"{keep} was itself merged into another record: merge into that one instead.")
        if remove.merged_into_id:
            raise MergeRefused(f"{remove} is already merged into another record.")
        changes: dict[str, Any] = {
            "moved": [], "deleted": [], "demoted": [], "filled": {}, "filled_with": {}, "cleared": {},
            "removed_is_active": remove.is_active,
        }  # fmt: skip
        for fk in relations(model):
            _move_rows(fk, source=remove, target=keep, changes=changes)
        _fill_blanks(keep, remove, changes)
        remove.merged_into = keep
        remove.is_active = False
        for entry in (remove, keep):  # the removed one first: it gives up the NPI the kept one takes
            entry.version += 1
            _refresh_search_text(entry)
            entry.save()
        merge = Merge.objects.create(
            kind=kind, kept_id=keep.pk, removed_id=remove.pk, changes=changes, merged_by=by
        )
        audit_record(
            actor=by,
            action="directory.merge",
            target=keep,
            detail={
                "merge_id": merge.pk, "kind": kind, "kept": str(keep), "removed_id": remove.pk,
                "removed": str(remove), "moved": len(changes["moved"]), "deleted": len(changes["deleted"]),
                "filled": sorted(changes["filled"]),
            },
        )  # fmt: skip
    return merge


def merge_reverse(*, merge: Merge, by: User | None) -> Merge:
    """Undo a merge: rows moved go back, rows deleted as duplicates come back, filled fields are emptied.

    A filled field that someone has changed since is left as they set it (and named in the audit event), so
    that reversing never throws away later work. Reversal is refused when the kept record was itself merged
    since: its rows now live on a third record, and that merge must be reversed first.
    """
    model = MODELS[merge.kind]
    with transaction.atomic():
        merge = Merge.objects.select_for_update().get(pk=merge.pk)
        if merge.reversed_at:
            when = timezone.localtime(merge.reversed_at).strftime("%Y-%m-%d %H:%M")
            raise MergeRefused(
                f"This merge was already reversed ({when} by {merge.reversed_by or 'system'})."
            )
        keep, remove = _lock(model, merge.kept_id, merge.removed_id)
        if keep.merged_into_id:
            raise MergeRefused(
                f"{keep} was itself merged into {keep.merged_into} after this merge: reverse that one first."
            )
        if remove.merged_into_id != keep.pk:
            raise MergeRefused(f"{remove} is no longer marked as merged into {keep}; nothing to reverse.")
        changes = merge.changes
        not_restored = _restore_fields(keep, changes["filled"], changes["filled_with"])
        keep.version += 1
        _refresh_search_text(keep)
        keep.save()  # first: it gives the NPI back before the removed record takes it again
        not_restored += _restore_cleared(remove, changes["cleared"])
        moved_back = _move_back(changes["moved"], source=keep, target=remove)
        for label, pk, name in changes["demoted"]:
            _model(label)._base_manager.filter(pk=pk).update(**{name: True})
        for row in serializers.deserialize("json", json.dumps(changes["deleted"])):
            row.save()
        remove.merged_into = None
        remove.is_active = changes["removed_is_active"]
        remove.version += 1
        _refresh_search_text(remove)
        remove.save()
        if isinstance(keep, ReferringPractice):  # locations moved back change the kept one's search text too
            _refresh_search_text(keep)
            keep.save(update_fields=["search_text"])
        merge.reversed_by = by
        merge.reversed_at = timezone.now()
        merge.changes = {**changes, "reversal": {"moved_back": moved_back, "not_restored": not_restored}}
        merge.save(update_fields=["reversed_by", "reversed_at", "changes"])
        audit_record(
            actor=by,
            action="directory.merge_reverse",
            target=keep,
            detail={
                "merge_id": merge.pk, "kind": merge.kind, "kept": str(keep), "removed_id": remove.pk,
                "removed": str(remove), "moved_back": moved_back, "recreated": len(changes["deleted"]),
                "not_restored": not_restored,
            },
        )  # fmt: skip
    return merge


def merge_entries(merge: Merge) -> tuple[Entry | None, Entry | None]:
    """The kept and removed records of a merge (None where a record has since disappeared)."""
    found = MODELS[merge.kind]._base_manager.in_bulk([merge.kept_id, merge.removed_id])
    return found.get(merge.kept_id), found.get(merge.removed_id)


# Moving rows


def _lock(model: type[Entry], keep_id: int, remove_id: int) -> tuple[Entry, Entry]:
    """Both records, locked in id order so two merges touching the same pair cannot deadlock."""
    rows = model._base_manager.select_for_update().filter(pk__in=[keep_id, remove_id]).order_by("pk")
    found = {row.pk: row for row in rows}
    if keep_id not in found or remove_id not in found:
        raise MergeRefused("One of the two records no longer exists.")
    return found[keep_id], found[remove_id]


def _move_rows(fk: ForeignKey, *, source: Entry, target: Entry, changes: dict[str, Any]) -> None:
    related = fk.model
    manager = related._base_manager
    label = related._meta.label_lower
    new_value = getattr(target, fk.target_field.attname)
    rows = manager.filter(**{fk.name: source}).order_by("pk")
    one_primary = (label, fk.name) in ONE_PRIMARY
    had_primary = one_primary and manager.filter(**{fk.name: target, "is_primary": True}).exists()
    unique_sets, partial = _unique_checks(related, fk)
    if unique_sets or partial:
        moved = []
        for row in rows:
            original = _serialize(row)
            setattr(row, fk.attname, new_value)
            if _breaks_unique(row, unique_sets, partial):
                _refuse_if_depended_on(row)
                manager.filter(pk=row.pk).delete()
                changes["deleted"].append(original)
            else:
                moved.append(row.pk)
    else:
        moved = list(rows.values_list("pk", flat=True))
    for chunk in _chunks(moved):
        manager.filter(pk__in=chunk).update(**{fk.attname: new_value})
    changes["moved"] += [[label, pk, fk.name] for pk in moved]
    if had_primary:
        for chunk in _chunks(moved):
            demoted = list(manager.filter(pk__in=chunk, is_primary=True).values_list("pk", flat=True))
            manager.filter(pk__in=demoted).update(is_primary=False)
            changes["demoted"] += [[label, pk, "is_primary"] for pk in demoted]


def _unique_checks(model: type[Model], fk: ForeignKey) -> tuple[list[tuple[Field, ...]], list]:
    """The unique field sets of `model` that include `fk`, and its conditional or expression constraints."""
    meta = model._meta
    sets = [(f,) for f in meta.concrete_fields if f.unique and not f.primary_key]
    sets += [tuple(meta.get_field(name) for name in names) for names in meta.unique_together]
    sets += [tuple(meta.get_field(name) for name in c.fields) for c in meta.total_unique_constraints]
    partial = [
        c
        for c in meta.constraints
        if isinstance(c, UniqueConstraint)
        and (c.contains_expressions or (c.condition is not None and fk.name in c.fields))
    ]
    return [s for s in sets if fk in s], partial


def _breaks_unique(row: Model, unique_sets: list[tuple[Field, ...]], partial: list) -> bool:
    """Whether another row already holds the values `row` now has in one of its unique sets.

    SQL lets NULLs repeat, and so does this check, except in a relation: two affiliations of a provider with
    one practice and no location are the same affiliation, though the database would store both.
    """
    model = type(row)
    for fields in unique_sets:
        lookup: dict[str, Any] = {}
        for f in fields:
            value = getattr(row, f.attname)
            if value is not None:
                lookup[f.attname] = value
            elif f.is_relation:
                lookup[f"{f.attname}__isnull"] = True
            else:
                break
        else:
            if model._base_manager.filter(**lookup).exclude(pk=row.pk).exists():
                return True
    for constraint in partial:
        try:
            constraint.validate(model, row, using=router.db_for_write(model))
        except ValidationError:
            return True
    return False


def _refuse_if_depended_on(row: Model) -> None:
    """Deleting a duplicate row must not take other rows with it (reversal could not bring those back)."""
    model = type(row)
    own_links = {f.remote_field.through for f in model._meta.many_to_many}  # serialized with the row
    collector = Collector(using=router.db_for_write(model), origin=row)
    try:
        collector.collect([row])
    except (ProtectedError, RestrictedError):
        dependent = True
    else:
        dependent = any(
            len(instances) > (1 if other is model else 0) for other, instances in collector.data.items()
        )
        dependent = dependent or any(
            qs.model not in own_links and qs.exists() for qs in collector.fast_deletes
        )
        dependent = dependent or any(
            (objs.exists() if hasattr(objs, "exists") else bool(objs))
            for batches in collector.field_updates.values()
            for objs in batches
        )
    if dependent:
        raise MergeRefused(
            f"Both records have {model._meta.verbose_name} “{row}”, and other records depend on the "
            "duplicate's copy. Remove or move those first, then merge."
        )


def _move_back(moved: Sequence[list], *, source: Entry, target: Entry) -> int:
    """Return moved rows to the removed record: only those still on the kept record (one reassigned since
    to somebody else stays where a person put it)."""
    by_relation: dict[tuple[str, str], list[int]] = defaultdict(list)
    for label, pk, name in moved:
        by_relation[label, name].append(pk)
    count = 0
    for (label, name), pks in by_relation.items():
        related = _model(label)
        fk = related._meta.get_field(name)
        for chunk in _chunks(pks):
            count += related._base_manager.filter(pk__in=chunk, **{name: source}).update(
                **{fk.attname: getattr(target, fk.target_field.attname)}
            )
    return count


# Filling blank fields


def _fill_blanks(keep: Entry, remove: Entry, changes: dict[str, Any]) -> None:
    """Copy the duplicate's values into the kept record's blank fields, remembering the old ones.

    A unique value (the NPI) is cleared on the duplicate first, or the database would refuse the copy.
    Fields the duplicate's staff had edited by hand stay theirs on the kept record (`manual_fields`).
    """
    model = type(keep)
    together = {name: group for group in FILLED_TOGETHER for name in group}
    filled: list[Field] = []
    for f in model._meta.concrete_fields:
        if f.primary_key or not f.editable or f.name in NOT_FILLED:
            continue
        group = [model._meta.get_field(name) for name in together.get(f.name, (f.name,))]
        if all(_blank(getattr(keep, g.attname)) for g in group) and not _blank(getattr(remove, f.attname)):
            filled.append(f)
    for f in filled:
        _set(keep, f, getattr(remove, f.attname), changes)
        if _unique_alone(model, f):
            changes["cleared"][f.name] = _jsonable(getattr(remove, f.attname))
            setattr(remove, f.attname, f.get_default())
    if remove.last_referral_on and remove.last_referral_on > (keep.last_referral_on or dt.date.min):
        _set(keep, model._meta.get_field("last_referral_on"), remove.last_referral_on, changes)
    mine = set(keep.manual_fields) | (set(remove.manual_fields) & {f.name for f in filled})
    if mine != set(keep.manual_fields):
        _set(keep, model._meta.get_field("manual_fields"), sorted(mine), changes)


def _set(entry: Entry, f: Field, value: Any, changes: dict[str, Any]) -> None:
    changes["filled"][f.name] = _jsonable(getattr(entry, f.attname))
    changes["filled_with"][f.name] = _jsonable(value)
    setattr(entry, f.attname, value)


def _restore_fields(keep: Entry, filled: dict[str, Any], filled_with: dict[str, Any]) -> list[str]:
    """Put back the kept record's old values where nobody has changed the filled ones since."""
    not_restored = []
    for name, old in filled.items():
        f = keep._meta.get_field(name)
        if name == "manual_fields":  # take back only the names the merge added, keep any marked since
            keep.manual_fields = sorted(set(keep.manual_fields) - (set(filled_with[name]) - set(old)))
            continue
        if _jsonable(getattr(keep, f.attname)) != filled_with[name]:
            not_restored.append(name)
            continue
        setattr(keep, f.attname, f.to_python(old) if not isinstance(old, list | dict) else old)
    return not_restored


def _restore_cleared(remove: Entry, cleared: dict[str, Any]) -> list[str]:
    """Give the removed record back its unique values, unless another record has taken one since."""
    not_restored = []
    for name, value in cleared.items():
        f = remove._meta.get_field(name)
        value = f.to_python(value)
        if type(remove)._base_manager.filter(**{f.attname: value}).exclude(pk=remove.pk).exists():
            not_restored.append(name)
            continue
        setattr(remove, f.attname, value)
    return not_restored


def _unique_alone(model: type[Model], f: Field) -> bool:
    return f.unique or any(
        isinstance(c, UniqueConstraint) and tuple(c.fields) == (f.name,) for c in model._meta.constraints
    )


# Small helpers


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _serialize(row: Model) -> dict[str, Any]:
    return json.loads(serializers.serialize("json", [row]))[0]


def _model(label: str) -> type[Model]:
    from django.apps import apps

    return apps.get_model(label)


def _chunks(items: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
