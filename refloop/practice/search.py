from __future__ import annotations

from django.db.models import Q
from django.urls import reverse

from refloop.practice.models import Clinician
from refloop.search import SearchHit, register


@register("settings.view")
def find_clinicians(user, query: str, limit: int) -> list[SearchHit]:
    terms = query.split()
    matches = Clinician.objects.all()
    for term in terms:
        matches = matches.filter(
            Q(first_name__icontains=term) | Q(last_name__icontains=term) | Q(npi__startswith=term)
        )
    return [
        SearchHit("Clinician", c.display_name, c.specialty, reverse("practice:clinician_edit", args=[c.pk]))
        for c in matches[:limit]
    ]
