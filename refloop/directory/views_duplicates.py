"""The duplicates page: probable duplicate pairs, the side-by-side merge page, and reversing a merge."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from refloop.accounts.permissions import require_action
from refloop.directory import duplicates as detection
from refloop.directory import merge as merging
from refloop.directory.models import Merge, ReferringPractice, ReferringProvider

PAIRS_SHOWN = 100
MERGES_SHOWN = 20
FINDERS = {
    Merge.Kind.PROVIDER: detection.find_duplicate_providers,
    Merge.Kind.PRACTICE: detection.find_duplicate_practices,
}
DETAIL_URL = {Merge.Kind.PROVIDER: "directory:provider", Merge.Kind.PRACTICE: "directory:practice"}


@dataclass
class PairRow:
    pair: detection.DuplicatePair
    keep: ReferringProvider | ReferringPractice
    remove: ReferringProvider | ReferringPractice
    compare_url: str


@dataclass
class MergeRow:
    merge: Merge
    kept: ReferringProvider | ReferringPractice | None
    removed: ReferringProvider | ReferringPractice | None
    kept_url: str

    @property
    def filled(self) -> list[str]:
        """The kept record's fields the merge filled in, as the forms name them."""
        meta = merging.MODELS[self.merge.kind]._meta
        names = [name for name in self.merge.changes.get("filled", {}) if name != "manual_fields"]
        return [str(meta.get_field(name).verbose_name) for name in names]


@require_GET
@require_action("directory.view")
def duplicates(request: HttpRequest) -> HttpResponse:
    """The page comes at once, with the recent merges; each list of pairs (`?pairs=provider`) is fetched by
    htmx after it, because scanning 25,000 providers takes about a second. Everyone who sees the directory
    may see the lists; only the roles that may merge get the buttons."""
    can_merge = request.user.can("directory.merge")
    if (kind := request.GET.get("pairs")) in FINDERS:
        context = {
            "rows": _pair_rows(FINDERS[kind](limit=PAIRS_SHOWN)),
            "limit": PAIRS_SHOWN,
            "kind_label": merging.MODELS[kind]._meta.verbose_name_plural,
            "can_merge": can_merge,
        }
        return render(request, "directory/_dup_pairs.html", context)
    just_merged = None
    if (merged := request.GET.get("merged", "")).isdigit():
        just_merged = next(iter(_merge_rows(Merge.objects.filter(pk=int(merged), reversed_at=None))), None)
    context = {
        "kind": "duplicates",
        "merges": _merge_rows(Merge.objects.select_related("merged_by", "reversed_by")[:MERGES_SHOWN]),
        "just_merged": just_merged,
        "can_merge": can_merge,
    }
    return render(request, "directory/duplicates.html", context)


@require_http_methods(["GET", "POST"])
@require_action("directory.merge")
def merge_confirm(request: HttpRequest, kind: str, first_id: int, second_id: int) -> HttpResponse:
    """GET compares two records side by side; POST merges the one not chosen into the one chosen."""
    model = merging.MODELS.get(kind)
    if model is None:
        raise Http404("No such kind of record.")
    first = get_object_or_404(model, pk=first_id)
    second = get_object_or_404(model, pk=second_id)
    if request.method == "POST":
        chosen = request.POST.get("keep", "")
        if chosen not in {str(first.pk), str(second.pk)}:
            messages.error(request, "Choose which of the two records to keep.")
            return redirect(request.path)
        keep, remove = (first, second) if chosen == str(first.pk) else (second, first)
        service = merging.provider_merge if kind == Merge.Kind.PROVIDER else merging.practice_merge
        try:
            merge = service(keep=keep, remove=remove, by=request.user)
        except merging.MergeRefused as exc:
            messages.error(request, str(exc))
            return redirect("directory:duplicates")
        messages.success(request, f"Merged {remove} into {keep}.")
        return redirect(reverse("directory:duplicates") + f"?merged={merge.pk}#just-merged")
    context = {
        "kind": kind,
        "first": first,
        "second": second,
        "rows": _comparison(kind, first, second),
        "first_url": reverse(DETAIL_URL[kind], args=[first.pk]),
        "second_url": reverse(DETAIL_URL[kind], args=[second.pk]),
        "refusal": _refusal(first, second),
    }
    return render(request, "directory/merge_confirm.html", context)


@require_POST
@require_action("directory.merge")
def merge_reverse(request: HttpRequest, merge_id: int) -> HttpResponse:
    merge = get_object_or_404(Merge, pk=merge_id)
    try:
        merge = merging.merge_reverse(merge=merge, by=request.user)
    except merging.MergeRefused as exc:
        messages.error(request, str(exc))
    else:
        kept, removed = merging.merge_entries(merge)
        meta = merging.MODELS[merge.kind]._meta
        kept_as_was = [
            str(meta.get_field(name).verbose_name) for name in merge.changes["reversal"]["not_restored"]
        ]
        note = f" Kept the values edited since the merge: {', '.join(kept_as_was)}." if kept_as_was else ""
        messages.success(
            request, f"Reversed the merge: {removed} is its own record again, beside {kept}.{note}"
        )
    return redirect(reverse("directory:duplicates") + "#merges")


def _pair_rows(pairs: list[detection.DuplicatePair]) -> list[PairRow]:
    if not pairs:
        return []
    model = merging.MODELS[pairs[0].kind]
    ids = {pk for pair in pairs for pk in (pair.keep_id, pair.remove_id)}
    queryset = model.objects.prefetch_related("locations") if model is ReferringPractice else model.objects
    found = queryset.in_bulk(ids)
    return [
        PairRow(
            pair,
            found[pair.keep_id],
            found[pair.remove_id],
            reverse("directory:merge_confirm", args=[pair.kind, pair.keep_id, pair.remove_id]),
        )
        for pair in pairs
        if pair.keep_id in found and pair.remove_id in found
    ]


def _merge_rows(merges) -> list[MergeRow]:
    merges = list(merges)
    found = {}
    for kind, model in merging.MODELS.items():
        ids = {pk for m in merges if m.kind == kind for pk in (m.kept_id, m.removed_id)}
        found[kind] = model._base_manager.in_bulk(ids) if ids else {}
    return [
        MergeRow(
            merge,
            found[merge.kind].get(merge.kept_id),
            found[merge.kind].get(merge.removed_id),
            reverse(DETAIL_URL[merge.kind], args=[merge.kept_id]),
        )
        for merge in merges
    ]


def _refusal(first, second) -> str:
    """Why these two cannot be merged as they stand ("" when they can); the service says the same on POST."""
    if first.pk == second.pk:
        return "These are the same record."
    for entry in (first, second):
        if entry.merged_into_id:
            return f"{entry} is already merged into another record."
    return ""


def _comparison(kind: str, first, second) -> list[tuple[str, str, str, bool]]:
    """(label, first value, second value, whether they differ) for the fields a person compares, then the
    number of rows of each relation, as the merge will move them."""
    if kind == Merge.Kind.PROVIDER:
        fields = [
            ("Name", lambda p: p.display_name),
            ("NPI", lambda p: p.npi),
            ("Specialty", lambda p: p.specialty),
            ("Primary taxonomy", lambda p: p.taxonomy_code),
            ("Address", lambda p: p.one_line_address),
            ("Phone", lambda p: p.phone),
            ("Fax", lambda p: p.fax),
            ("Fax for reports", lambda p: p.report_fax),
            ("Email", lambda p: p.email),
            ("Direct address", lambda p: p.direct_address),
        ]
    else:
        fields = [
            ("Name", lambda p: p.name),
            ("Organization NPI", lambda p: p.npi),
            ("Phone", lambda p: p.phone),
            ("Fax", lambda p: p.fax),
            ("Email", lambda p: p.email),
            ("Website", lambda p: p.website),
            ("Addresses", lambda p: "; ".join(loc.one_line_address for loc in p.locations.all())),
        ]
    fields += [
        ("Tier", lambda e: str(e.tier or "")),
        ("Territory", lambda e: str(e.territory or "")),
        ("Liaison", lambda e: str(e.liaison or "")),
        ("Active", lambda e: "yes" if e.is_active else "no"),
        ("Source", lambda e: e.get_source_display()),
        ("Added", lambda e: f"{e.created_at:%Y-%m-%d}"),
        ("Last referral", lambda e: f"{e.last_referral_on:%Y-%m-%d}" if e.last_referral_on else ""),
    ]
    rows = [(label, value(first) or "", value(second) or "") for label, value in fields]
    counts = zip(merging.related_counts(first), merging.related_counts(second), strict=True)
    rows += [(label, str(a), str(b)) for (label, a), (_, b) in counts]
    return [(label, a, b, a != b) for label, a, b in rows]
