"""Notifications to the family and the parties, and referral events to back-office webhooks.

``send_notification`` records each notification in the outbox (keyed by the workflow's effect
key plus the recipient, so a retried activity or a replayed workflow inserts nothing new),
then emails each recipient who prefers email, exactly once per (key, recipient), through the
delivery ledger (``activities/dispatch.py``). Texts are short, plain English and carry as
little personal data as possible: the referral's reference, dates, and the provider's
contact details; never a child's name.

``publish_events`` delivers the referral's status events (``referral.created``,
``referral.status_changed``, ``referral.closed``, ``deadline.breached``; and for referrals
under the lifecycle-edge rules ``meeting.cancelled``, ``referral.reopened`` and
``deadline.met`` when it corrects a breach) to subscribed back-office systems as signed
webhooks, once per (event, subscription).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.dispatch import (
    Case,
    DispatchConfig,
    Dispatcher,
    Reach,
    Retry,
    autocommit_engine,
    keepalive,
    preferred_channel,
    reach,
)
from activities.party_links import LinkMinter
from models.adapters.delivery import TransientFailure
from models.adapters.mail import Attachment, Mailer, OutgoingMail
from models.adapters.pdf import (
    Issuer,
    cancelled_meeting_calendar,
    clock_time,
    long_date,
    party_label,
)
from models.adapters.webhooks import WebhookSender
from models.domain.clock import london_date
from models.domain.correlation import council_reference, subject_for
from models.domain.party_links import TEMPLATE_PURPOSES
from models.domain.referral import MeetingStatus, Referral
from models.messages import (
    PUBLISH_EVENTS,
    SEND_NOTIFICATION,
    STATUS_EVENT_FIELDS,
    DeliveryOutcome,
    EventRecord,
    NotificationRequest,
    Projection,
    PublishRequest,
    is_status_event,
)
from models.store.db import dialect_of, insert_stmt
from models.store.tables import NotificationRow, ReferralRow, table_of

log = logging.getLogger(__name__)

__all__ = ["NotifyActivities"]


class NotifyActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        mailer: Mailer | None = None,
        webhooks: WebhookSender | None = None,
        config: DispatchConfig | None = None,
    ) -> None:
        """Without a mailer (or config), notifications are only recorded in the outbox."""
        self._sessionmaker = sessionmaker
        self._dialect = dialect_of(sessionmaker)
        self._engine = autocommit_engine(sessionmaker)
        self._config = config
        self._dispatcher = (
            Dispatcher(sessionmaker, mailer, webhooks or WebhookSender(), config)
            if mailer is not None and config is not None
            else None
        )
        self._links = LinkMinter(sessionmaker, config) if config is not None else None

    @activity.defn(name=SEND_NOTIFICATION)
    async def send_notification(self, request: NotificationRequest) -> int:
        """Queue the notification for each recipient, email those who prefer email (once
        each); returns how many outbox rows were new."""
        async with keepalive():
            return await self._notify(request)

    async def _notify(self, request: NotificationRequest) -> int:
        # The referral is read (and validated) once, with its provider, for outbox and email.
        snapshot = None
        if self._dispatcher is not None:
            snapshot = await self._dispatcher.snapshot(request.referral_id)
            referral = snapshot.referral
        else:
            referral = await self._referral(request.referral_id)
        now = datetime.now(UTC)
        values: list[Mapping[str, Any]] = [
            {
                "key": f"{request.key}:{recipient}",
                "referral_id": request.referral_id,
                "template": request.template,
                "recipient": recipient,
                "channel": preferred_channel(referral, recipient),
                "status": "queued",
                "created_at": now,
                "data": dict(request.data),
            }
            for recipient in request.recipients
        ]
        if not values:
            return 0
        stmt = insert_stmt(self._dialect, table_of(NotificationRow)).values(values)
        async with self._engine.connect() as conn:
            result = await conn.execute(stmt.on_conflict_do_nothing())
            created = int(result.rowcount or 0)
        if self._dispatcher is not None and snapshot is not None:
            await self._email(self._dispatcher, request, snapshot.case())
        return created

    async def _referral(self, referral_id: str) -> Referral:
        async with self._sessionmaker() as session:
            row = await session.get(ReferralRow, referral_id)
            if row is None:
                raise RuntimeError("referral not projected yet")  # retried
            return Referral.model_validate(row.snapshot)

    async def _email(
        self, dispatcher: Dispatcher, request: NotificationRequest, case: Case
    ) -> None:
        retry: list[str] = []
        mediator = request.data.get("mediator")
        mediator_email = None
        if mediator and "mediator" in request.recipients:
            mediator_email = await dispatcher.mediator_email(mediator)
        for recipient in dict.fromkeys(request.recipients):
            key = f"{request.key}:{recipient}"
            target = reach(case.referral, recipient, mediator_email)
            if recipient == "provider":  # a meeting reply: the provider's registry address
                to = case.provider_email or dispatcher.config.escalation_email
                target = Reach("email", to) if to else Reach("none", detail="no provider email")
            link = await self._link(case, request, recipient, key, target)
            try:
                outcome = await dispatcher.email(
                    case,
                    key=key,
                    purpose="notification",
                    recipient=recipient,
                    target=target,
                    compose=self._composer(case, request, recipient, link),
                    template=request.template,
                )
            except TransientFailure as exc:
                retry.append(exc.detail)
                continue
            if link is not None and self._links is not None:
                await self._links.settled(key)
            await self._mark(key, outcome)
        if retry:
            raise ApplicationError(str(Retry(retry)), type="DeliveryRetry")

    async def _link(
        self, case: Case, request: NotificationRequest, recipient: str, key: str, target: Reach
    ) -> str | None:
        """The recipient's personal link, when this email asks them to decide something."""
        purpose = TEMPLATE_PURPOSES.get(request.template)
        if purpose is None or self._links is None or target.channel != "email":
            return None
        respond_by = request.data.get("respond_by")
        return await self._links.url(
            case.referral,
            send_key=key,
            party=recipient,
            purpose=purpose,
            answer_by=date.fromisoformat(respond_by) if respond_by else None,
        )

    async def _mark(self, key: str, outcome: DeliveryOutcome) -> None:
        """Mirror the delivery's outcome on the outbox row."""
        table = table_of(NotificationRow)
        async with self._engine.connect() as conn:
            await conn.execute(
                update(table).where(table.c.key == key).values(status=outcome.status)
            )

    def _composer(
        self, case: Case, request: NotificationRequest, recipient: str, link: str | None = None
    ) -> Callable[[str, datetime], OutgoingMail]:
        assert self._config is not None
        config = self._config
        data = dict(request.data)
        if "invitee" in data:  # a meeting reply, told to the provider: who, in words
            invitee = data["invitee"]
            data["invitee_label"] = (
                "The family's supporter"
                if invitee == "supporter"
                else party_label(case.referral, invitee)
            )

        def compose(address: str, when: datetime) -> OutgoingMail:
            issuer = case.letterhead.issuer
            subject, body = notification_text(
                request.template,
                data,
                case.referral.id,
                issuer,
                recipient,
                sent_on=london_date(when),
                link=link,
            )
            return OutgoingMail(
                key=f"{request.key}:{recipient}",
                sender=config.mail_from,
                sender_name=issuer.name,
                to=address,
                reply_to=issuer.email,
                subject=subject_for(subject, case.referral, recipient),
                body=body,
                date=when,
                attachments=cancellation_attachment(case.referral, request, issuer),
            )

        return compose

    @activity.defn(name=PUBLISH_EVENTS)
    async def publish_events(self, req: PublishRequest) -> int:
        """Webhooks for the referral's status events, once per (event, subscription).

        Returns how many deliveries stand sent for these events.
        """
        async with keepalive():
            return await self._publish(req)

    async def _publish(self, req: PublishRequest) -> int:
        if self._dispatcher is None:
            return 0
        events = [e for e in req.events if is_status_event(e)]
        if not events:
            return 0
        case = await self._dispatcher.case(req.referral_id)
        sent, retry = await self._deliver(case, events)
        if retry:
            raise ApplicationError(str(Retry(retry)), type="DeliveryRetry")
        return sent

    async def publish_now(self, projection: Projection) -> tuple[int, ...]:
        """``project_referral``'s webhooks, straight after its commit: the events whose
        delivery must be retried (or could not be tried) are returned for ``publish_events``."""
        wanted = set(projection.publish)
        events = [e for e in projection.events if e.seq in wanted and is_status_event(e)]
        if self._dispatcher is None or not events:
            return ()
        case = await self._dispatcher.case_of(projection.referral)
        unsent: list[int] = []
        for event in events:
            _sent, retry = await self._deliver(case, [event])
            if retry:
                unsent.append(event.seq)
        return tuple(unsent)

    async def _deliver(self, case: Case, events: Sequence[EventRecord]) -> tuple[int, list[str]]:
        """Each event to every matching subscription, once: (how many sent, what to retry)."""
        assert self._dispatcher is not None
        assert self._config is not None
        referral = case.referral
        local_authority, route = referral.local_authority, referral.route.value
        sent = 0
        retry: list[str] = []
        for event in events:
            try:
                outcomes = await self._dispatcher.publish(
                    case,
                    referral_id=referral.id,
                    local_authority=local_authority,
                    event_type=event.type,
                    event_key=f"{referral.id}:event-{event.seq}",
                    payload=status_event(
                        referral.id,
                        local_authority,
                        route,
                        event,
                        self._config.base_url,
                        external_reference=council_reference(referral),
                    ),
                    purpose="event",
                )
            except Retry as exc:
                retry += exc.details
                continue
            sent += sum(1 for o in outcomes if o.status == "sent")
        return sent, retry


def status_event(
    referral_id: str,
    local_authority: str,
    route: str,
    event: EventRecord,
    base_url: str,
    *,
    external_reference: str | None = None,
) -> dict[str, Any]:
    """The webhook body of a status event: codes and dates from a whitelist, no free text."""
    fields = STATUS_EVENT_FIELDS[event.type]
    data: dict[str, Any] = {
        "referral_id": referral_id,
        "local_authority": local_authority,
        "external_reference": external_reference,
        "route": route,
        "seq": event.seq,
        "on": event.on.isoformat(),
        "referral_url": f"{base_url.rstrip('/')}/v1/referrals/{referral_id}",
    }
    for name in fields:
        value = event.data.get(name)
        if value is None or isinstance(value, str | int | bool):
            data[name] = value
    return {"type": event.type, "timestamp": event.at.isoformat(), "data": data}


# --------------------------------------------------------------------------- texts


def cancellation_attachment(
    referral: Referral, request: NotificationRequest, issuer: Issuer
) -> tuple[Attachment, ...]:
    """A cancelled meeting's notice carries its calendar entry, cancelled: same UID, higher
    SEQUENCE, METHOD:CANCEL, so the meeting leaves every invitee's calendar."""
    if request.template != "meeting_cancelled" or "reason" not in request.data:
        return ()  # notices from before the lifecycle-edge rules carried no calendar
    meeting = next((m for m in referral.meetings if m.id == request.data.get("meeting")), None)
    if meeting is None or meeting.status is not MeetingStatus.CANCELLED:
        return ()
    data = cancelled_meeting_calendar(referral, meeting, issuer)
    name = f"meeting-cancelled-{meeting.id}.ics"
    return (Attachment(name, "text/calendar; method=CANCEL", data),)


def _when(value: str | None) -> str:
    """An ISO date or instant from the notification's data, in plain words."""
    if not value:
        return ""
    try:
        if "T" in value:
            instant = datetime.fromisoformat(value)
            return f"{long_date(instant.date())} at {clock_time(instant)}"
        return long_date(date.fromisoformat(value))
    except ValueError:
        return ""


def _past(value: str | None, sent_on: date | None) -> bool:
    """Whether the ISO date ``value`` is before the day the message is sent: such a date is
    never given as one to act by."""
    if not value or sent_on is None:
        return False
    try:
        return date.fromisoformat(value[:10]) < sent_on
    except ValueError:
        return False


MEETING_ENDINGS: dict[str, str] = {
    "referral_withdrawn": " because the referral was withdrawn",
    "mediation_declined": " because the family decided not to go ahead with mediation",
    "referral_cancelled": " because the case was closed by the mediation service",
}


def appeal_words(data: Mapping[str, str], provider: str, sent_on: date | None) -> str:
    """What the referral's ending means for the family's right of appeal, in plain words
    (from ``transitions.appeal_position``); "" when the notice carries none."""
    kind = data.get("appeal")
    deadline = data.get("appeal_deadline")
    late = (
        f"The deadline to appeal to the Tribunal was 5pm on {_when(deadline)}. You can still "
        "ask the Tribunal to accept a late appeal: send it as soon as you can and explain "
        "why it is late."
    )
    if kind == "dr":
        return "Disagreement resolution does not affect any right of appeal you have."
    if kind == "no_tribunal":
        return (
            "The issues in this referral are about health or social care provision only. They "
            "cannot be appealed to the SEND Tribunal on their own; you can still complain to "
            "the NHS or to the council."
        )
    if kind in ("no_certificate_needed", "certificate_issued") and deadline:
        if _past(deadline, sent_on):
            return late
        if kind == "certificate_issued":
            return (
                "Your right of appeal is not affected: your mediation certificate still "
                "counts. If you want to appeal, the Tribunal must receive your appeal by 5pm "
                f"on {_when(deadline)}."
            )
        return (
            "Your right of appeal is not affected. You do not need a mediation certificate to "
            "appeal about the school or placement named in the plan (section I): if you want "
            f"to appeal, the Tribunal must receive your appeal by 5pm on {_when(deadline)}."
        )
    if kind == "certificate_needed":
        contact = data.get("contact_by")
        words = (
            "Your right of appeal is not affected, but to appeal to the Tribunal you need a "
            "mediation certificate, and none has been issued for this referral. To get one, "
            f"contact {provider}"
        )
        if contact and not _past(contact, sent_on):
            words += f" by {_when(contact)}"
        words += (
            ": they will talk to you about mediation and can issue the certificate if you "
            "decide not to go ahead."
        )
        if contact and _past(contact, sent_on):
            words += (
                f" The usual 2 months to do this ended on {_when(contact)}, so the Tribunal "
                "may need to give you more time."
            )
        words += " You then have 1 month from the date of the certificate to appeal"
        if deadline and not _past(deadline, sent_on):
            words += f" (or until {_when(deadline)}, if that is later)"
        return words + "."
    return ""


def notification_text(
    template: str,
    data: Mapping[str, str],
    referral_id: str,
    issuer: Issuer,
    recipient: str,
    *,
    sent_on: date | None = None,
    link: str | None = None,
) -> tuple[str, str]:
    """Subject and body for a notification template (short, plain English, minimal data).

    ``sent_on`` is the day the message goes out: a date before it is never given as one to
    act by; the text says what is overdue and what happens next instead.
    """
    provider = issuer.name
    respond_by = _when(data.get("respond_by"))
    arrange_by = _when(data.get("arrange_by"))
    due_on = _when(data.get("due_on"))
    starts = _when(data.get("starts_at"))
    action = data.get("action", "")
    family = recipient == "family"
    answer_late = _past(data.get("respond_by"), sent_on)
    arrange_late = _past(data.get("arrange_by"), sent_on)
    action_late = _past(data.get("due_on"), sent_on)
    appeal = appeal_words(data, provider, sent_on) if family else ""
    texts: dict[str, tuple[str, str]] = {
        "dr_consent_request": (
            "Will you take part in disagreement resolution?",
            "A family has asked for disagreement resolution about special educational needs "
            "provision, and has named your organisation. It is free, confidential and "
            f"voluntary. Please tell {provider} by {respond_by or 'the date we gave you'} "
            "whether you will take part.",
        ),
        "dr_consent_reminder": (
            "Reminder: will you take part in disagreement resolution?",
            f"We have not yet heard whether you will take part. Please tell {provider} by "
            f"{respond_by or 'the date we gave you'}. If we do not hear from you, we will take "
            "it that you will not take part.",
        ),
        "dr_going_ahead": (
            "Disagreement resolution is going ahead",
            "Everyone needed has agreed to take part. "
            f"{provider} will contact you to arrange the meeting.",
        ),
        "dr_not_going_ahead": (
            "Disagreement resolution is not going ahead",
            "Disagreement resolution will not go ahead"
            + (f" because {data['reason']}" if data.get("reason") else "")
            + (
                f" by {_when(data['window_ended_on'])}, the last day to answer"
                if data.get("window_ended_on")
                else ""
            )
            + f". You can contact {provider} to talk about other options. Your other rights "
            "are not affected."
            + (
                f" If someone did answer in time and we have not recorded it, tell {provider} "
                f"by {_when(data['reopen_until'])}: the referral can then go ahead."
                if data.get("reopen_until") and not _past(data["reopen_until"], sent_on)
                else ""
            ),
        ),
        "mediation_requested_la": _la_mediation_text(
            data, referral_id, provider, arrange_by, late=arrange_late
        ),
        "icb_notification": (
            f"Mediation about health care provision: referral {referral_id}",
            "A family has asked for mediation that includes health care provision. Mediation "
            f"must be arranged by {arrange_by or 'the 30-day deadline'}. Please contact "
            f"{provider} to take part.",
        ),
        "invitation_to_take_part": (
            "Invitation to take part in mediation",
            "A family has asked for a meeting with a mediator and would like someone from your "
            f"organisation to attend. {provider} will contact you with the date and details.",
        ),
        "supporter_welcome": (
            "You have been named as a supporter",
            "A family has named you as the person supporting them at their meeting. "
            f"{provider} will send you the meeting details.",
        ),
        "meeting_cancelled": (
            "Meeting cancelled",
            f"The meeting{' on ' + starts if starts else ''} has been cancelled"
            + MEETING_ENDINGS.get(data.get("reason", ""), "")
            + ". "
            + (
                "A calendar file is attached that removes it from your calendar. "
                if "reason" in data
                else ""
            )
            + f"{provider} will contact you about what happens next.",
        ),
        "referral_withdrawn": (
            "Referral withdrawn",
            f"Referral {referral_id} has been withdrawn and is now closed. "
            "Nothing more is needed from you.",
        ),
        "referral_cancelled": (
            "Referral closed",
            f"Referral {referral_id} has been closed by {provider} and nothing more will "
            f"happen with it. If you did not expect this, contact {provider}.",
        ),
        "referral_closed": (
            "Referral closed",
            f"Referral {referral_id} is now closed: no mediation meeting was held. "
            f"Contact {provider} if you have questions.",
        ),
        "referral_reopened": (
            "Disagreement resolution can go ahead after all",
            f"Referral {referral_id} is open again. We closed it on "
            f"{_when(data.get('closed_on')) or 'an earlier date'} because nobody had said by "
            f"{_when(data.get('window_ended_on')) or 'the deadline'} that they would take "
            "part, but we have now recorded an answer that was given in time, on "
            f"{_when(data.get('answered_on')) or 'time'}. {provider} will contact you to "
            "arrange the meeting.",
        ),
        "action_reminder": (
            f"Reminder: agreed action due by {due_on}" if due_on else "Reminder: agreed action",
            f"An action agreed at the meeting ({action or 'see the signed agreement'}) is due "
            f"by {due_on or 'the agreed date'}. Please make sure it is done on time and tell "
            f"{provider} when it is.",
        ),
        "family_decision": (
            "Do you want to go to mediation?",
            "Thank you for talking to us about mediation. Please tell us whether you want to "
            "go to mediation, or do not want to. If you decide not to, we will send you a "
            "mediation certificate, which you need to appeal to the Tribunal.",
        ),
        "meeting_reply": _meeting_reply_text(data, referral_id, starts),
        "action_overdue": (
            "Agreed action overdue",
            f"An action agreed at the meeting ({action or 'see the signed agreement'}) was due "
            f"by {due_on or 'the agreed date'} and has not been recorded as done."
            + (
                f" If you are worried, contact {provider}."
                if family
                else f" Please complete it and tell {provider}."
            ),
        ),
    }
    # Sent after the date it would have asked for: say what is overdue and what happens next.
    if answer_late:
        for name in ("dr_consent_request", "dr_consent_reminder"):
            texts[name] = (
                "Disagreement resolution: the date to answer has passed",
                "A family has asked for disagreement resolution about special educational "
                "needs provision, and has named your organisation. We needed to know by "
                f"{respond_by} whether you would take part, and that date has passed. If you "
                f"answered by then, or still want to take part, contact {provider} now. "
                "Otherwise disagreement resolution will not go ahead with your organisation.",
            )
    if arrange_late:
        texts["icb_notification"] = (
            f"Mediation about health care provision: referral {referral_id}",
            "A family has asked for mediation that includes health care provision. Mediation "
            f"had to be arranged by {arrange_by}, and that date has passed. It can still take "
            f"place: please contact {provider} now to arrange it.",
        )
    if action_late:
        texts["action_reminder"] = texts["action_overdue"]
    subject, text = texts.get(
        template,
        (
            f"Update about referral {referral_id}",
            f"There is an update about referral {referral_id}. "
            f"{provider} will contact you if anything is needed from you.",
        ),
    )
    if appeal:
        text += "\n\n" + appeal
    if link:
        text += (
            "\n\nAnswer online with your personal link (do not forward it; it works once and "
            f"only for you):\n{link}"
        )
    contact = f"Questions? Contact {provider}"
    if issuer.phone:
        contact += f" on {issuer.phone}"
    if issuer.email:
        contact += f" or {issuer.email}"
    contact += f" ({issuer.office_hours})."
    body = "\n".join(["Hello,", "", text, "", contact, f"Referral reference: {referral_id}"])
    return subject, body + "\n"


def _meeting_reply_text(data: Mapping[str, str], referral_id: str, starts: str) -> tuple[str, str]:
    """To the provider: an invitee attends, or asks to rearrange (with the reason)."""
    who = data.get("invitee_label") or data.get("invitee", "An invitee")
    when = f" on {starts}" if starts else ""
    if data.get("answer") == "rearrange":
        return (
            f"Meeting rearrangement asked: referral {referral_id}",
            f"{who} asked to rearrange the meeting{when}."
            + (f"\n\nTheir reason: {data['reason']}" if data.get("reason") else "")
            + "\n\nThe meeting stands until you cancel or rebook it.",
        )
    return (
        f"Meeting attendance confirmed: referral {referral_id}",
        f"{who} confirmed they will attend the meeting{when}.",
    )


def _la_mediation_text(
    data: Mapping[str, str], referral_id: str, provider: str, arrange_by: str, *, late: bool
) -> tuple[str, str]:
    """To the council: mediation was requested (and, late, what is now overdue)."""
    subject = f"Mediation requested: referral {referral_id}"
    if data.get("arranger") == "icb":
        return subject, (
            "A family has asked for mediation about health care provision in an EHC plan "
            "your council maintains. The ICB arranges this mediation"
            + (f" (by {arrange_by})" if arrange_by else "")
            + f"; the council may be asked to take part. {provider} will be in touch."
        )
    if late:
        certificate = (
            " The family is therefore issued a mediation certificate now, so that they can "
            "appeal to the Tribunal."
            if data.get("certificate_required") == "true"
            else ""
        )
        return subject, (
            "A family asked for mediation about a decision your council made. Mediation had "
            f"to be held by {arrange_by} (30 days after the council was told), and that date "
            f"has passed.{certificate} Mediation can still take place if the family wants it: "
            f"please contact {provider} to arrange it, and send someone who can make decisions "
            "about the issues."
        )
    return subject, (
        "A family has asked for mediation about a decision your council made. The council "
        f"must arrange mediation by {arrange_by or 'the 30-day deadline'} and send someone "
        f"who can make decisions about the issues. Please contact {provider} to arrange it."
    )
