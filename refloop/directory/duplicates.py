"""Finding probable duplicate referring providers and practices.

The same doctor ends up in the directory twice: once typed from a faxed referral (no NPI, a misspelt name),
once from the NPPES file. Comparing every pair of 25,000 providers would be 312 million comparisons, so each
record is first put into a few blocks that a real duplicate pair almost always shares (the same NPI; the same
last name and first initial; the same phone or fax number; the same ZIP and start of the name), and only
pairs that meet in a block are scored, with rapidfuzz for the names.

The functions here only read; merging is in `merge.py`.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from refloop.directory.models import Merge, PracticeLocation, ReferringPractice, ReferringProvider

# A pair is listed from this score up (0-100).
MIN_SCORE = 70
# Below this name similarity two records are different people or offices, whatever else they share: the
# doctors of one group practice share its phone and address.
NAME_FLOOR = 75
# Office names are longer and share more words by chance ("Riverside Cardiology", "Riverside Dermatology").
PRACTICE_NAME_FLOOR = 85
# Jane and John Smith at one address with one phone are a couple, not a duplicate: first names this far
# apart ("Diana"/"Duane") are two people, while "Jon"/"John", "C"/"Christina", "Bill"/"William" pass.
FIRST_NAME_FLOOR = 70
# A block this big says nothing about identity (a hospital switchboard shared by hundreds of providers, the
# commonest surname in one ZIP). Its members still meet through their other blocks; skipping it keeps the
# number of scored pairs near-linear in the size of the directory.
MAX_BLOCK = 150

NAME_WEIGHT = 0.6
# When one record has neither an address nor a phone (a stub typed from a referral), the name is all there
# is to go on, and it may carry the pair on its own.
SPARSE_NAME_WEIGHT = 0.85
SAME_ADDRESS, SIMILAR_ADDRESS, SAME_ZIP = 25, 15, 10
SAME_NUMBER = 25
DIFFERENT_NPIS = 20

PROVIDER_FIELDS = (
    "id", "npi", "first_name", "last_name", "credentials", "specialty", "address_line1", "city",
    "postal_code", "phone", "fax", "report_fax", "email",
)  # fmt: skip
PRACTICE_FIELDS = ("id", "npi", "name", "phone", "fax", "email", "website")
LOCATION_FIELDS = ("practice_id", "address_line1", "postal_code", "phone", "fax")

# Words that say nothing about which person or office a name belongs to.
_PERSON_NOISE = {
    "dr", "md", "do", "dds", "dmd", "np", "pa", "pac", "aprn", "cnp", "rn", "phd", "od", "dpm", "jr", "sr",
    "ii", "iii", "iv",
}  # fmt: skip
_PRACTICE_NOISE = {
    "the", "of", "and", "llc", "inc", "pc", "pllc", "pa", "ltd", "corp", "co", "lp", "llp", "sc", "psc",
    "assoc", "assocs", "grp",
}  # fmt: skip
# Generic words of office names, dropped even when misspelt ("Physsicians"), so that "Riverside Pediatrics"
# and "Riverside Pediatric Associates" compare as the one office they are.
_PRACTICE_GENERIC = (
    "associates", "group", "partners", "clinic", "physicians", "specialists", "practice", "offices",
)  # fmt: skip
_STREET_WORDS = {
    "street": "st", "avenue": "ave", "av": "ave", "road": "rd", "drive": "dr", "boulevard": "blvd",
    "lane": "ln", "court": "ct", "place": "pl", "parkway": "pkwy", "highway": "hwy", "suite": "ste",
    "building": "bldg", "floor": "fl", "north": "n", "south": "s", "east": "e", "west": "w",
    "circle": "cir", "terrace": "ter", "square": "sq", "center": "ctr", "centre": "ctr",
}  # fmt: skip
# Common given names and their short forms, as they appear on referral forms.
_NICKNAMES = {
    "william": "bill will billy", "robert": "bob rob bobby", "richard": "rick rich", "james": "jim jimmy",
    "john": "jack", "michael": "mike", "joseph": "joe", "thomas": "tom", "charles": "chuck charlie",
    "christopher": "chris", "daniel": "dan danny", "matthew": "matt", "anthony": "tony", "steven": "steve",
    "stephen": "steve", "edward": "ed ted", "andrew": "andy drew", "nicholas": "nick", "benjamin": "ben",
    "samuel": "sam", "alexander": "alex", "jonathan": "jon", "timothy": "tim", "gregory": "greg",
    "elizabeth": "liz beth betty", "katherine": "kate kathy katie", "catherine": "cathy kate",
    "jennifer": "jen jenny", "margaret": "maggie peggy meg", "patricia": "pat patty trish",
    "susan": "sue", "deborah": "debbie deb", "rebecca": "becky", "kimberly": "kim", "victoria": "vicky",
}  # fmt: skip
_NICKNAME_PAIRS = frozenset(
    frozenset((formal, short)) for formal, shorts in _NICKNAMES.items() for short in shorts.split()
)
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_NOT_DIGIT = re.compile(r"\D")


@dataclass(frozen=True)
class DuplicatePair:
    """Two current records that probably describe one provider or practice; `keep_id` is the fuller one."""

    kind: str
    keep_id: int
    remove_id: int
    score: int
    reasons: tuple[str, ...]


@dataclass
class Record:
    """What detection needs of one directory entry, normalized once so that scoring a pair is cheap."""

    pk: int
    name: str
    npi: str = ""
    first: str = ""
    last: str = ""
    addresses: list[tuple[str, str]] = field(default_factory=list)  # (ZIP5, normalized street line)
    numbers: dict[str, str] = field(default_factory=dict)  # digits -> "phone" or "fax"
    fullness: int = 0
    keys: list[str] = field(default_factory=list)

    @property
    def sparse(self) -> bool:
        return not self.addresses and not self.numbers


def words(text: str, noise: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Lower-case ASCII words of `text`, accents folded ("Peña" matches "Pena"), noise words dropped."""
    text = text or ""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return [w for w in _NOT_WORD.split(text.lower()) if w and w not in noise]


@functools.lru_cache(maxsize=20_000)
def _generic(word: str) -> bool:
    if len(word) < 5:
        return False
    return process.extractOne(word, _PRACTICE_GENERIC, scorer=fuzz.ratio, score_cutoff=85) is not None


def phone_digits(text: str) -> str:
    """The ten digits of a US number, or "" when there are not ten (extensions and junk say nothing)."""
    number = _NOT_DIGIT.sub("", text or "")
    if len(number) == 11 and number.startswith("1"):
        number = number[1:]
    if len(number) != 10 or len(set(number)) == 1:
        return ""
    return number


def street(text: str) -> str:
    return " ".join(_STREET_WORDS.get(w, w) for w in words(text))


def zip5(text: str) -> str:
    digits = _NOT_DIGIT.sub("", text or "")
    return digits[:5] if len(digits) >= 5 else ""


def _add_numbers(record: Record, phones: Iterable[str], faxes: Iterable[str]) -> None:
    for kind, values in (("phone", phones), ("fax", faxes)):
        for value in values:
            if number := phone_digits(value):
                record.numbers.setdefault(number, kind)


def _add_address(record: Record, line1: str, postal_code: str) -> None:
    code, line = zip5(postal_code), street(line1)
    if code or line:
        record.addresses.append((code, line))


def provider_record(row: dict) -> Record:
    """A provider's Record from a `values()` row of the fields in PROVIDER_FIELDS."""
    first_words = words(row["first_name"], _PERSON_NOISE)
    last_words = words(row["last_name"], _PERSON_NOISE)
    first, last = "".join(first_words), "".join(last_words)
    record = Record(
        pk=row["id"],
        name=" ".join(first_words + last_words),
        npi=row["npi"],
        first=first,
        last=last,
        fullness=sum(1 for name in PROVIDER_FIELDS if row.get(name)),
    )
    _add_numbers(record, [row["phone"]], [row["fax"], row["report_fax"]])
    _add_address(record, row["address_line1"], row["postal_code"])
    keys = [f"name:{last}|{first[:1]}"] if last else []
    keys += [f"zip:{code}|{last[:1]}" for code, _ in record.addresses if code and last]
    record.keys = _common_keys(record) + keys
    return record


def practice_record(row: dict, locations: Sequence[dict]) -> Record:
    """A practice's Record: its own phone and fax plus every location's address, phone and fax."""
    all_words = words(row["name"], _PRACTICE_NOISE)
    name_words = [w for w in all_words if not _generic(w)] or all_words
    record = Record(
        pk=row["id"],
        name=" ".join(name_words),
        npi=row["npi"],
        fullness=sum(1 for name in PRACTICE_FIELDS if row.get(name)) + len(locations),
    )
    _add_numbers(
        record,
        [row["phone"], *(loc["phone"] for loc in locations)],
        [row["fax"], *(loc["fax"] for loc in locations)],
    )
    for location in locations:
        _add_address(record, location["address_line1"], location["postal_code"])
    prefix = "".join(name_words)[:3]
    keys = [f"name:{' '.join(name_words[:2])}"] if name_words else []
    keys += [f"zip:{code}|{prefix}" for code, _ in record.addresses if code and prefix]
    record.keys = _common_keys(record) + keys
    return record


def _common_keys(record: Record) -> list[str]:
    keys = [f"npi:{record.npi}"] if record.npi else []
    return keys + [f"tel:{number}" for number in record.numbers]


def candidate_pairs(records: Sequence[Record]) -> set[tuple[int, int]]:
    """Index pairs (i < j) of records that share at least one block small enough to say something."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        for key in set(record.keys):
            blocks[key].append(index)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if 1 < len(members) <= MAX_BLOCK:
            pairs.update(itertools.combinations(members, 2))
    return pairs


def name_similarity(a: str, b: str) -> float:
    """token_sort_ratio forgives words in another order ("Smith John"); plain ratio forgives a typo in a
    word's first letter ("linic"), which moves that word elsewhere in the sorted order."""
    return max(fuzz.token_sort_ratio(a, b), fuzz.ratio(a, b))


def first_name_similarity(a: str, b: str) -> int:
    """How alike two first names are as names of one person: "C" fits "Christina", "Bill" fits "William"."""
    if not a or not b:
        return 70  # one record has no first name: nothing for or against
    if a == b:
        return 100
    if len(a) == 1 or len(b) == 1:
        return 85 if a[0] == b[0] else 0
    if a.startswith(b) or b.startswith(a) or frozenset((a, b)) in _NICKNAME_PAIRS:
        return 90
    return round(fuzz.ratio(a, b))


def last_names_agree(a: str, b: str) -> bool:
    """A typo ("Jonhson") or a double-barrelled form ("Smith-Jones") still agrees; "Sparks" and "Perkins"
    do not, however alike the full names look next to a shared first name."""
    if not a or not b:
        return True
    return a in b or b in a or fuzz.ratio(a, b) >= 75


def _address_points(a: Record, b: Record) -> tuple[int, str]:
    best = (0, "")
    for (zip_a, line_a), (zip_b, line_b) in itertools.product(a.addresses, b.addresses):
        if not zip_a or zip_a != zip_b:
            continue
        similarity = fuzz.token_sort_ratio(line_a, line_b) if line_a and line_b else 0
        if similarity >= 90:
            return SAME_ADDRESS, "same address"
        found = (SIMILAR_ADDRESS, "similar address") if similarity >= 75 else (SAME_ZIP, "same ZIP")
        best = max(best, found)
    return best


def _number_reason(a: Record, b: Record) -> str:
    shared = a.numbers.keys() & b.numbers.keys()
    if not shared:
        return ""
    kinds = {(a.numbers[n], b.numbers[n]) for n in shared}
    if ("phone", "phone") in kinds:
        return "same phone"
    if ("fax", "fax") in kinds:
        return "same fax"
    return "phone matches fax"


def score_pair(a: Record, b: Record, *, people: bool) -> tuple[int, list[str]] | None:
    """How likely two records are one (0-100) and why, or None when they are clearly not one.

    The name carries at most 60 points, a shared address and a shared number 25 each, so a pair needs the name
    and some agreement about where the office is; when one record has neither (a stub typed from a referral)
    the name carries 85. A shared NPI settles it. Two providers with different NPIs are different people (an
    NPI belongs to one person for life), as are two whose last or first names clearly differ; an organization
    may hold several NPIs, so practices only lose points for it.
    """
    same_npi = bool(a.npi) and a.npi == b.npi
    if people and a.npi and b.npi and not same_npi:
        return None
    name = round(name_similarity(a.name, b.name))
    first = 100
    if people:
        if not (last_names_agree(a.last, b.last) or name >= 95 or same_npi):
            return None
        first = first_name_similarity(a.first, b.first)
        if first < FIRST_NAME_FLOOR and not same_npi:
            return None
        name = max(name, round(0.6 * fuzz.ratio(a.last, b.last) + 0.4 * first))
    if name < (NAME_FLOOR if people else PRACTICE_NAME_FLOOR) and not same_npi:
        return None
    reasons = ["same NPI"] if same_npi else []
    reasons.append("same name" if name == 100 else f"name {name:.0f}% similar")
    weight = SPARSE_NAME_WEIGHT if a.sparse or b.sparse else NAME_WEIGHT
    points = name * weight
    address, why = _address_points(a, b)
    if address:
        points += address
        reasons.append(why)
    if number := _number_reason(a, b):
        points += SAME_NUMBER
        reasons.append(number)
    if a.npi and b.npi and not same_npi:
        points -= DIFFERENT_NPIS
        reasons.append("different NPIs")
    elif bool(a.npi) != bool(b.npi):
        reasons.append("only one has an NPI")
    if a.sparse or b.sparse:
        reasons.append("no address or phone on one record")
    return (100 if same_npi else max(0, min(100, round(points)))), reasons


def rank_pairs(records: Sequence[Record], *, kind: str, limit: int) -> list[DuplicatePair]:
    """Score every candidate pair and return the best `limit` at or above MIN_SCORE, highest first."""
    people = kind == Merge.Kind.PROVIDER
    found: list[DuplicatePair] = []
    for i, j in candidate_pairs(records):
        scored = score_pair(records[i], records[j], people=people)
        if scored is None or scored[0] < MIN_SCORE:
            continue
        keep, remove = sorted((records[i], records[j]), key=_keep_order)
        found.append(DuplicatePair(kind, keep.pk, remove.pk, scored[0], tuple(scored[1])))
    found.sort(key=lambda p: (-p.score, p.keep_id, p.remove_id))
    return found[:limit]


def _keep_order(record: Record) -> tuple[bool, int, int]:
    """The record to keep: the one with an NPI, then the fuller one, then the older one."""
    return (not record.npi, -record.fullness, record.pk)


def find_duplicate_providers(*, limit: int = 200) -> list[DuplicatePair]:
    """Probable duplicate pairs among current (unmerged) referring providers, the likeliest first."""
    rows = ReferringProvider.objects.current().order_by().values(*PROVIDER_FIELDS)
    records = [provider_record(row) for row in rows.iterator(chunk_size=5000)]
    return rank_pairs(records, kind=Merge.Kind.PROVIDER, limit=limit)


def find_duplicate_practices(*, limit: int = 200) -> list[DuplicatePair]:
    """Probable duplicate pairs among current referring practices, compared with all their locations."""
    locations: dict[int, list[dict]] = defaultdict(list)
    location_rows = PracticeLocation.objects.filter(practice__merged_into__isnull=True).order_by()
    for location in location_rows.values(*LOCATION_FIELDS).iterator(chunk_size=5000):
        locations[location["practice_id"]].append(location)
    rows = ReferringPractice.objects.current().order_by().values(*PRACTICE_FIELDS)
    records = [practice_record(row, locations.get(row["id"], [])) for row in rows.iterator(chunk_size=5000)]
    return rank_pairs(records, kind=Merge.Kind.PRACTICE, limit=limit)
