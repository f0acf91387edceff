"""Planned visits as an iCalendar file (RFC 5545) a liaison imports into any calendar app.

Written by hand: the format is small, and this keeps a run-time dependency off the server. Timed activities
are written in UTC; activities without a time are all-day events. Lines are folded at 75 octets without
splitting a UTF-8 character, and text values are escaped as the RFC says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.urls import reverse

from refloop.outreach.models import Activity

DEFAULT_MINUTES = 60


def escape(text: str) -> str:
    return (
        (text or "")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    pieces, start, width = [], 0, 75
    while start < len(raw):
        end = min(start + width, len(raw))
        while end < len(raw) and (raw[end] & 0xC0) == 0x80:  # never cut inside a character
            end -= 1
        pieces.append(raw[start:end].decode("utf-8"))
        start, width = end, 74  # continuation lines begin with a space
    return "\r\n ".join(pieces)


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_text(
    activities: Iterable[Activity], *, name: str, now: dt.datetime, base_url: str = "", uid_domain: str = "refloop"
) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//refloop//Outreach planned visits//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(name)}",
    ]
    for activity in activities:
        lines += _event(activity, now=now, base_url=base_url, uid_domain=uid_domain)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def _event(activity: Activity, *, now: dt.datetime, base_url: str, uid_domain: str) -> list[str]:
    practice = activity.practice
    location = activity.location or (practice.primary_location if practice else None)
    title = (
        f"{activity.get_kind_display()}: {practice.name if practice else ', '.join(map(str, activity.providers.all()))}"
    )
    details = [
        activity.purpose,
        f"Talking points: {activity.talking_points}" if activity.talking_points else "",
        "Providers: " + ", ".join(p.display_name for p in activity.providers.all()) if activity.providers.all() else "",
        "Staff: " + ", ".join(str(s) for s in activity.staff.all()) if activity.staff.all() else "",
        base_url + reverse("outreach:activity", args=[activity.pk]) if base_url else "",
    ]
    lines = [
        "BEGIN:VEVENT",
        f"UID:activity-{activity.pk}@{uid_domain}",
        f"DTSTAMP:{_utc(now)}",
        f"LAST-MODIFIED:{_utc(activity.updated_at)}",
    ]
    if activity.starts_at is not None:
        start = activity.starts_at
        end = start + dt.timedelta(minutes=activity.duration_minutes or DEFAULT_MINUTES)
        lines += [f"DTSTART:{_utc(start)}", f"DTEND:{_utc(end)}"]
    else:
        lines += [
            f"DTSTART;VALUE=DATE:{activity.date:%Y%m%d}",
            f"DTEND;VALUE=DATE:{activity.date + dt.timedelta(days=1):%Y%m%d}",
        ]
    lines += [
        f"SUMMARY:{escape(title)}",
        f"DESCRIPTION:{escape(chr(10).join(d for d in details if d))}",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
    ]
    if location is not None:
        lines.append(f"LOCATION:{escape(location.one_line_address)}")
    if base_url:
        lines.append(f"URL:{base_url}{reverse('outreach:activity', args=[activity.pk])}")
    lines.append("END:VEVENT")
    return lines
