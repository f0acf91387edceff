"""Finding the resource a Reference points at, inside what the sender sent: nothing is ever fetched.

A reference resolves to a contained resource ("#id"), to a Bundle entry (by fullUrl, or by "Type/id" against
an entry's resource or the tail of its fullUrl), or, for a logical reference that carries only an identifier,
to a stand-in holding that identifier (enough to match a practitioner by NPI).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Found:
    resource: dict
    where: str  # where it sits in the request, e.g. "Bundle.entry[3].resource" or "ServiceRequest.contained[0]"
    contained: dict[str, Found] = field(default_factory=dict, compare=False, repr=False)


def contained_of(resource: dict, where: str) -> dict[str, Found]:
    out: dict[str, Found] = {}
    for i, item in enumerate(resource.get("contained") or []):
        if isinstance(item, dict) and item.get("id"):
            out["#" + item["id"]] = Found(item, f"{where}.contained[{i}]")
    for found in list(out.values()):  # contained resources refer to their siblings by "#id" too
        object.__setattr__(found, "contained", out)
    return out


def found_at(resource: dict, where: str) -> Found:
    return Found(resource, where, contained_of(resource, where))


class Resolver:
    def __init__(self, entries: list[tuple[str, Found]] = ()):
        self.index: dict[str, Found] = {}
        for full_url, found in entries:
            kind, rid = found.resource.get("resourceType"), found.resource.get("id")
            keys = [full_url] if full_url else []
            if kind and rid:
                keys.append(f"{kind}/{rid}")
            if full_url and "/" in full_url and not full_url.startswith("urn:"):
                keys.append("/".join(full_url.rstrip("/").split("/")[-2:]))
            for key in keys:
                self.index.setdefault(key, found)

    def resolve(self, reference: object, by: Found, where: str = "") -> Found | None:
        """What `reference` (a Reference element of the resource `by`) points at, or None."""
        if not isinstance(reference, dict):
            return None
        target = reference.get("reference")
        if isinstance(target, str) and target:
            if target.startswith("#"):
                return by.contained.get(target)
            hit = self.index.get(target)
            if hit is None and "/" in target and not target.startswith("urn:"):
                hit = self.index.get("/".join(target.rstrip("/").split("/")[-2:]))
            if hit is not None:
                return hit
        identifier = reference.get("identifier")
        if isinstance(identifier, dict) and identifier.get("value"):
            kind = reference.get("type") or (target.split("/")[-2] if target and "/" in target else "")
            return Found({"resourceType": kind, "identifier": [identifier]}, f"{where}.identifier")
        return None

    def of_type(self, kind: str) -> list[Found]:
        seen: list[Found] = []
        for found in self.index.values():
            if found.resource.get("resourceType") == kind and all(found is not s for s in seen):
                seen.append(found)
        return seen
