"""Optimistic concurrency for edit forms: two people open the same record and both save; the second is told.

The form carries the record's stamp in a hidden field, `edit_stamp`: its `version` where the model keeps one,
else its `updated_at`, else a digest of its saved columns (so no model needs a new column for this). Right
before the save, inside the view's transaction, the row is locked and its stamp read again; if it moved on,
the form gets an error naming the conflict, nothing is written, and the view answers 409.

The directory's provider and practice forms and the referral moves keep their own `version` checks inside
their services (StaleEdit); this is for the plain ModelForm edits that save without a service that checks.
A form posted without a stamp (an old page, a script) is not checked: the field is optional, as `version` is
on the directory forms.
"""

from __future__ import annotations

import hashlib
import json

from django import forms
from django.db.models import Model

FIELD = "edit_stamp"
CONFLICT = 409
NONE_YET = "none-yet"


def stamp_of(instance: Model) -> str:
    names = {f.name for f in instance._meta.concrete_fields}
    parts = []
    if "version" in names:
        parts.append(f"v{instance.version}")
    if "updated_at" in names and instance.updated_at is not None:
        parts.append(instance.updated_at.isoformat())
    if parts:
        return "@".join(parts)
    values = {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}
    return hashlib.sha256(json.dumps(values, default=str, sort_keys=True).encode()).hexdigest()[:32]


def rows_stamp(rows) -> str:
    """One stamp for a whole set of records edited on one page (e.g. the letter rules' switches)."""
    stamps = "|".join(f"{row.pk}:{stamp_of(row)}" for row in rows)
    return hashlib.sha256(stamps.encode()).hexdigest()[:32]


def carry_stamp(form: forms.BaseForm, instance: Model | None, *, none_yet: bool = False) -> forms.BaseForm:
    """Give `form` the hidden stamp of the record it edits.

    A form that creates a record has nothing to carry, unless the record is one of a kind (a referral's draft
    report, a year's limit): then `none_yet` stamps "there was none", and a save after someone else created it
    is a conflict too.
    """
    saved = None
    if instance is not None and instance.pk is not None:
        saved = type(instance)._base_manager.filter(pk=instance.pk).first()
    stamp = stamp_of(saved) if saved is not None else (NONE_YET if none_yet else "")
    if stamp:
        form.fields[FIELD] = forms.CharField(widget=forms.HiddenInput, required=False, initial=stamp)
    return form


def stale_problem(form: forms.BaseForm, instance: Model | None) -> str:
    """Inside transaction.atomic(), right before saving: lock the row and compare its stamp with the form's.

    Returns "" when the save may go ahead; otherwise adds the conflict to the form and returns the message.
    """
    sent = form.data.get(form.add_prefix(FIELD), "") if form.is_bound else ""
    if not sent or (instance is None and sent == NONE_YET):
        return ""
    current = None
    if instance is not None and instance.pk is not None:
        current = type(instance)._base_manager.select_for_update().filter(pk=instance.pk).first()
    if current is None and sent != NONE_YET:
        message = "This record was deleted by someone else after you opened it; your changes were not saved."
    elif current is not None and stamp_of(current) == sent:
        return ""
    else:
        label = instance._meta.verbose_name
        message = (
            f"This {label} was changed by someone else after you opened it; your changes were not saved. "
            "Reload the page to see their change, then make yours again."
        )
    form.add_error(None, message)
    return message
