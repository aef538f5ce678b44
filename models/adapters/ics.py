"""iCalendar (RFC 5545) files for meetings, written with the ``icalendar`` library.

One event per file, times in UTC. An invitation is ``METHOD:PUBLISH``, ``STATUS:CONFIRMED``,
``SEQUENCE:0``; when the meeting is cancelled (by a command, or because the referral ended)
the same event is sent again as ``METHOD:CANCEL``, ``STATUS:CANCELLED`` with the **same UID**
and a higher ``SEQUENCE``, which calendar programs take as "remove this meeting". The library
escapes, folds (75 octets) and encodes; the bytes depend only on the arguments.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Alarm, Calendar, Event

PRODID = "-//SEND referrals//Meeting invitation//EN"
INVITATION_SEQUENCE = 0
CANCELLATION_SEQUENCE = 1


def calendar_file(
    *,
    uid: str,
    starts_at: datetime,
    ends_at: datetime,
    stamp: datetime,
    summary: str,
    location: str,
    description: str,
    url: str | None = None,
    cancelled: bool = False,
    reminder: str | None = None,
) -> bytes:
    """One meeting as an iCalendar file: published, or (``cancelled``) its cancellation."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "CANCEL" if cancelled else "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("dtstart", starts_at.astimezone(UTC))
    event.add("dtend", ends_at.astimezone(UTC))
    event.add("summary", summary)
    event.add("location", location)
    event.add("description", description)
    if url:
        event.add("url", url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("sequence", CANCELLATION_SEQUENCE if cancelled else INVITATION_SEQUENCE)
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    if reminder and not cancelled:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", reminder)
        alarm.add("trigger", -timedelta(days=1))
        event.add_component(alarm)
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data
