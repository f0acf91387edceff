"""A sensible order for a day's planned visits, worked out with nothing fetched from the network.

There is no geocoder on a closed hospital network, so each stop is placed by its ZIP code: the table below holds
approximate centroids (two decimals, about a kilometre) of the ZIP codes of the demo region around Columbus,
Ohio. Distance between two known ZIPs is the great-circle distance between their centroids; when either ZIP
is not in the table, the proxy is the numeric distance between the two 5-digit ZIP codes (nearby ZIPs share
their leading digits), counted as one kilometre per unit and capped, so unknown places sort after known
nearby ones and a stop without a ZIP goes last. The route starts at the practice's own address and always
goes next to the nearest stop not yet visited (nearest neighbour); ties go to the earlier planned time, then
the practice name, so the same day always gives the same order. An installation elsewhere extends the table.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

# ZIP -> (latitude, longitude), approximate centroids.
ZIP_CENTROIDS: dict[str, tuple[float, float]] = {
    "43015": (40.30, -83.07),  # Delaware
    "43016": (40.10, -83.15),  # Dublin
    "43017": (40.12, -83.13),  # Dublin
    "43026": (40.02, -83.16),  # Hilliard
    "43035": (40.19, -82.99),  # Lewis Center
    "43040": (40.24, -83.36),  # Marysville
    "43064": (40.10, -83.27),  # Plain City
    "43065": (40.18, -83.09),  # Powell
    "43068": (39.95, -82.80),  # Reynoldsburg
    "43081": (40.11, -82.91),  # Westerville
    "43082": (40.15, -82.88),  # Westerville
    "43110": (39.83, -82.81),  # Canal Winchester
    "43123": (39.88, -83.09),  # Grove City
    "43201": (39.99, -83.00),  # Columbus, Short North / University
    "43205": (39.96, -82.96),  # Columbus, Olde Towne East
    "43209": (39.95, -82.93),  # Bexley
    "43214": (40.05, -83.02),  # Clintonville
    "43215": (39.96, -83.01),  # Downtown Columbus
    "43220": (40.05, -83.07),  # Upper Arlington north
    "43221": (40.02, -83.08),  # Upper Arlington
    "43230": (40.03, -82.87),  # Gahanna
    "43235": (40.10, -83.05),  # Worthington west
}
KM_PER_ZIP_UNIT = 1.0
FAR_KM = 10_000.0  # a stop with no usable ZIP


def zip5(postal_code: str) -> str:
    code = (postal_code or "").strip()[:5]
    return code if len(code) == 5 and code.isdigit() else ""


def distance_km(a: str, b: str) -> float:
    a, b = zip5(a), zip5(b)
    if not a or not b:
        return FAR_KM
    if a == b:
        return 0.0
    if a in ZIP_CENTROIDS and b in ZIP_CENTROIDS:
        (lat1, lon1), (lat2, lon2) = ZIP_CENTROIDS[a], ZIP_CENTROIDS[b]
        p1, p2 = math.radians(lat1), math.radians(lat2)
        dp, dl = p2 - p1, math.radians(lon2 - lon1)
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * 6371.0 * math.asin(math.sqrt(h))
    return min(FAR_KM - 1, abs(int(a) - int(b)) * KM_PER_ZIP_UNIT + 50.0)


@dataclass(frozen=True)
class Stop:
    key: int  # the activity's id
    name: str
    address: str
    postal_code: str
    start_time: dt.time | None = None


def route_order(stops: Sequence[Stop], *, start_zip: str = "") -> list[Stop]:
    """The stops in nearest-neighbour order from `start_zip` (or from the earliest planned stop)."""

    def tie(stop: Stop) -> tuple:
        return (stop.start_time or dt.time.max, stop.name, stop.key)

    left = sorted(stops, key=tie)
    if not left:
        return []
    here = zip5(start_zip)
    ordered: list[Stop] = []
    if not here:
        first = left.pop(0)
        ordered.append(first)
        here = first.postal_code
    while left:
        nearest = min(left, key=lambda stop: (distance_km(here, stop.postal_code), tie(stop)))
        left.remove(nearest)
        ordered.append(nearest)
        here = nearest.postal_code
    return ordered
