"""The API's input and output shapes. Inputs are checked for form (types, lengths, known choices) only;
every rule about what may be saved lives in the services they are passed to."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Strict, field_validator

from refloop.directory.models import ContactPreference, ReportChannel, StaffRole
from refloop.outreach.compliance import GivenAs
from refloop.outreach.models import ActivityKind, ActivityStatus, ConcernCategory, ConcernStatus, Severity
from refloop.referrals.models import Channel, Sex, Urgency
from refloop.referrals.workflow import LostReason, State

MAX_ID = 2**53  # ids beyond this are not ours, and SQLite cannot even compare them


def _sane_day(value: dt.date) -> dt.date:
    if not 1900 <= value.year <= 2200:
        raise ValueError("Give a date between the years 1900 and 2200.")
    return value


def _sane_moment(value: dt.datetime) -> dt.datetime:
    _sane_day(value.date())
    return value


def _written_as(pattern: str, what: str) -> BeforeValidator:
    """Accept only the written form (pydantic would otherwise read 0 as 1 January 1970, or "1" as True)."""
    regex = re.compile(pattern)

    def check(value: Any) -> Any:
        if not isinstance(value, str) or not regex.match(value):
            raise ValueError(f"Give {what}.")
        return value

    return BeforeValidator(check)


# Body fields take JSON's own types strictly: a number is not a yes/no, a string is not an id.
Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Day = Annotated[dt.date, _written_as(r"^\d{4}-\d{2}-\d{2}$", "a date as YYYY-MM-DD"), AfterValidator(_sane_day)]
Moment = Annotated[
    dt.datetime,
    _written_as(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", "a date and time as YYYY-MM-DDTHH:MM:SS with its offset"),
    AfterValidator(_sane_moment),
]
Clock = Annotated[dt.time, _written_as(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$", "a time of day as HH:MM:SS, no offset")]


def _text(size: int, *, required: bool = False):
    return Field(..., min_length=1, max_length=size) if required else Field("", max_length=size)


def _no_nul(value: Any, path: str = "") -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Text must not contain NUL characters.")
    if isinstance(value, list):
        for item in value:
            _no_nul(item)


class In(Schema):
    """Every input: unknown fields are refused (a typo must not be silently dropped), and no NUL bytes."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        _no_nul(value)
        return value


# Shared references


class Ref(Schema):
    id: int
    name: str


class UserRef(Schema):
    id: int
    username: str
    name: str


class PageOut(Schema):
    count: int
    limit: int
    offset: int
    next_offset: int | None


# Patients


class PatientIn(In):
    first_name: str = _text(100, required=True)
    last_name: str = _text(100, required=True)
    birth_date: Day
    sex: Sex = Sex.UNKNOWN
    phone: str = _text(40)
    email: str = _text(254)
    mrn: str = _text(40)
    payer: str = _text(120)
    plan: str = _text(120)
    member_id: str = _text(60)
    preferred_language: str = Field("English", max_length=40)
    address_line1: str = _text(200)
    address_line2: str = _text(200)
    city: str = _text(100)
    state: str = _text(2)
    postal_code: str = _text(10)


class PatientOut(Schema):
    id: int
    first_name: str
    last_name: str
    birth_date: dt.date
    sex: str
    mrn: str
    phone: str
    email: str
    payer: str
    plan: str
    member_id: str
    preferred_language: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    version: int
    referral_ids: list[int] = []


class PatientRef(Schema):
    id: int
    first_name: str
    last_name: str
    birth_date: dt.date
    mrn: str


class PatientPage(PageOut):
    items: list[PatientOut]


# Referrals


class ReferralIn(In):
    patient_id: Id | None = Field(None, description="An existing patient; or give `patient` to match or create one.")
    patient: PatientIn | None = None
    referring_provider_id: Id | None = None
    referring_provider_npi: str | None = Field(None, max_length=10, description="Instead of referring_provider_id.")
    other_source_id: Id | None = Field(None, description="When the source is not a referring provider.")
    secondary_source_id: Id | None = None
    location_id: Id | None = None
    clinician_id: Id | None = None
    reason: str = _text(4000, required=True)
    diagnosis_codes: list[Annotated[str, Field(max_length=10)]] = Field([], max_length=20)
    urgency: Urgency = Urgency.ROUTINE
    received_at: Moment | None = Field(None, description="When it arrived; now when left out.")
    channel: Channel = Channel.WEB
    authorization_number: str = _text(60)
    visits_approved: Count | None = Field(None, ge=0, le=999)
    notes: str = _text(4000)
    external_id: str = Field("", max_length=100, description="The sender's own id for this referral.")


class ProviderRef(Schema):
    id: int
    npi: str
    name: str


class EventOut(Schema):
    at: dt.datetime
    action: str
    from_state: str
    to_state: str
    by: str
    note: str


class ReferralOut(Schema):
    id: int
    state: State
    urgency: Urgency
    channel: Channel
    reason: str
    diagnosis_codes: list[str]
    received_at: dt.datetime
    patient: PatientRef
    referring_provider: ProviderRef | None
    referring_practice: Ref | None
    other_source: Ref | None
    location: Ref | None
    clinician: Ref | None
    coordinator: UserRef | None
    owner: UserRef | None
    due_at: dt.datetime | None
    overdue: bool
    first_contact_at: dt.datetime | None
    appointment_at: dt.datetime | None
    seen_at: dt.datetime | None
    report_sent_at: dt.datetime | None
    closed_at: dt.datetime | None
    decline_reason: str
    lost_reason: str
    follow_up: str
    authorization_number: str
    visits_approved: int | None
    external_id: str
    notes: str
    version: int
    next_steps: list[str] = Field(description="The workflow steps the caller may take now.")


class ReferralDetailOut(ReferralOut):
    events: list[EventOut]


class ReferralPage(PageOut):
    items: list[ReferralOut]


class TransitionIn(In):
    appointment_at: Moment | None = Field(None, description="schedule, reschedule")
    location_id: Id | None = Field(None, description="schedule, reschedule")
    clinician_id: Id | None = Field(None, description="schedule, reschedule")
    reason: str = Field("", max_length=2000, description="decline, cancel, return_to_referrer, reopen")
    follow_up: str = Field("", max_length=4000, description="send_back")
    lost_reason: LostReason | None = Field(None, description="mark_lost")
    note: str = _text(2000)


# Directory


class ProviderFields(In):
    npi: str = _text(10)
    name_prefix: str = _text(20)
    first_name: str = _text(100)
    middle_name: str = _text(100)
    name_suffix: str = _text(20)
    credentials: str = _text(60)
    taxonomy_code: str = _text(10)
    specialty: str = _text(150)
    phone: str = _text(40)
    fax: str = _text(40)
    email: str = _text(254)
    address_line1: str = _text(200)
    address_line2: str = _text(200)
    city: str = _text(100)
    state: str = _text(2)
    postal_code: str = _text(10)
    report_channel: ReportChannel = ReportChannel.FAX
    report_fax: str = _text(40)
    report_email: str = _text(254)
    direct_address: str = _text(254)
    tier_id: Id | None = None
    target_visit_days: Count | None = Field(None, ge=1, le=3650)
    territory_id: Id | None = None
    liaison_id: Id | None = None
    is_active: Flag = True
    notes: str = _text(4000)


class ProviderIn(ProviderFields):
    last_name: str = _text(100, required=True)


class ProviderPatch(ProviderFields):
    """Only the fields sent are changed."""

    last_name: str = Field(None, min_length=1, max_length=100)


class ProviderOut(Schema):
    id: int
    npi: str
    name_prefix: str
    first_name: str
    middle_name: str
    last_name: str
    name_suffix: str
    credentials: str
    taxonomy_code: str
    specialty: str
    phone: str
    fax: str
    email: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    report_channel: str
    report_fax: str
    report_email: str
    direct_address: str
    tier_id: int | None
    target_visit_days: int | None
    territory_id: int | None
    liaison_id: int | None
    is_active: bool
    notes: str
    source: str
    last_referral_on: dt.date | None
    version: int


class ProviderPage(PageOut):
    items: list[ProviderOut]


class LocationIn(In):
    label: str = _text(100)
    address_line1: str = _text(200, required=True)
    address_line2: str = _text(200)
    city: str = _text(100, required=True)
    state: str = Field(..., min_length=2, max_length=2)
    postal_code: str = Field(..., min_length=5, max_length=10)
    phone: str = _text(40)
    fax: str = _text(40)
    hours: str = _text(200)


class LocationOut(Schema):
    id: int
    label: str
    address_line1: str
    address_line2: str
    city: str
    state: str
    postal_code: str
    phone: str
    fax: str
    hours: str
    is_primary: bool


class PracticeFields(In):
    npi: str = _text(10)
    phone: str = _text(40)
    fax: str = _text(40)
    email: str = _text(254)
    website: str = _text(200)
    tier_id: Id | None = None
    territory_id: Id | None = None
    liaison_id: Id | None = None
    is_active: Flag = True
    notes: str = _text(4000)


class PracticeIn(PracticeFields):
    name: str = _text(200, required=True)
    location: LocationIn | None = Field(None, description="The practice's first (primary) location.")


class PracticePatch(PracticeFields):
    """Only the fields sent are changed."""

    name: str = Field(None, min_length=1, max_length=200)


class PracticeOut(Schema):
    id: int
    name: str
    npi: str
    phone: str
    fax: str
    email: str
    website: str
    tier_id: int | None
    territory_id: int | None
    liaison_id: int | None
    is_active: bool
    notes: str
    source: str
    last_referral_on: dt.date | None
    locations: list[LocationOut]
    version: int


class PracticePage(PageOut):
    items: list[PracticeOut]


class StaffFields(In):
    last_name: str = _text(100)
    role: StaffRole = StaffRole.FRONT_DESK
    title: str = _text(100)
    phone: str = _text(40)
    email: str = _text(254)
    birthday_month: Count | None = Field(None, ge=1, le=12)
    birthday_day: Count | None = Field(None, ge=1, le=31)
    work_anniversary: Day | None = None
    contact_preference: ContactPreference = ContactPreference.PHONE
    interests: str = _text(300)
    notes: str = _text(4000)
    is_active: Flag = True


class StaffContactIn(StaffFields):
    practice_id: Id
    first_name: str = _text(100, required=True)


class StaffContactPatch(StaffFields):
    """Only the fields sent are changed."""

    first_name: str = Field(None, min_length=1, max_length=100)


class StaffContactOut(Schema):
    id: int
    practice_id: int
    first_name: str
    last_name: str
    role: str
    title: str
    phone: str
    email: str
    birthday_month: int | None
    birthday_day: int | None
    work_anniversary: dt.date | None
    contact_preference: str
    interests: str
    notes: str
    is_active: bool
    updated_at: dt.datetime


class StaffContactPage(PageOut):
    items: list[StaffContactOut]


# Outreach


class ActivityIn(In):
    kind: ActivityKind
    date: Day
    status: ActivityStatus | None = Field(None, description="planned or done; by the date when left out.")
    practice_id: Id | None = None
    location_id: Id | None = None
    provider_ids: list[Id] = Field([], max_length=100)
    staff_ids: list[Id] = Field([], max_length=100)
    liaison_id: Id | None = None
    start_time: Clock | None = None
    duration_minutes: Count | None = Field(None, ge=1, le=1440)
    cost: Decimal = Field(Decimal("0.00"), ge=0, le=100000, decimal_places=2)
    given_as: GivenAs = GivenAs.ITEM
    purpose: str = _text(300)
    talking_points: str = _text(4000)
    outcome: str = _text(4000)
    override_reason: str = Field("", max_length=2000, description="A compliance override's reason (managers).")


class ActivityOut(Schema):
    id: int
    kind: str
    status: str
    date: dt.date
    start_time: dt.time | None
    duration_minutes: int | None
    practice_id: int | None
    location_id: int | None
    provider_ids: list[int]
    staff_ids: list[int]
    liaison_id: int | None
    cost: Decimal
    purpose: str
    talking_points: str
    outcome: str
    origin: str
    warnings: list[str] = []


class ActivityPage(PageOut):
    items: list[ActivityOut]


class ConcernIn(In):
    practice_id: Id
    summary: str = _text(200, required=True)
    category: ConcernCategory = ConcernCategory.COMPLAINT
    severity: Severity = Severity.MEDIUM
    what_happened: str = _text(4000)
    provider_id: Id | None = None
    raised_by_id: Id | None = Field(None, description="The staff contact who raised it.")
    raised_on: Day | None = None
    due_on: Day | None = None
    owner_id: Id | None = None


class ConcernPatch(In):
    """Only the fields sent are changed; resolve with status `resolved` and a resolution."""

    category: ConcernCategory = None
    severity: Severity = None
    summary: str = Field(None, min_length=1, max_length=200)
    what_happened: str = Field(None, max_length=4000)
    owner_id: Id | None = None
    due_on: Day | None = None
    status: ConcernStatus = None
    resolution: str = Field(None, max_length=4000)
    provider_id: Id | None = None


class ConcernOut(Schema):
    id: int
    practice_id: int
    provider_id: int | None
    raised_by_id: int | None
    category: str
    severity: str
    summary: str
    what_happened: str
    owner_id: int | None
    raised_on: dt.date
    due_on: dt.date | None
    status: str
    resolution: str
    resolved_on: dt.date | None
    updated_at: dt.datetime


class ConcernPage(PageOut):
    items: list[ConcernOut]
