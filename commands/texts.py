"""SMS and email: a tier's texts queued with its chat alerts; an SOS's, a silent alarm's and each reminder's on standby,
sent when chat fails or nobody acknowledges; what chat says once a text has gone; the all-clear to those texted."""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from commands.context import Ctx
from flows import alerts, textalerts
from flows.alerts import Phones
from flows.messages import Message
from flows.visit import Visit
from flows.watch import Alarm
from storage import drills
from storage.store import Tx

log = logging.getLogger("visitsafe.sweep")


def queue_texts(ctx: Ctx, tx: Tx, visit: Visit, alarms: list[Alarm], now: datetime, phones: Phones) -> int:
    """In the tier's own transaction: its sms:/email: audiences queued, and an SMS per person of the tier on standby."""
    queued = 0
    for alarm in alarms:
        if alarm.kind == "repeat":
            # A reminder after the last tier (or during an emergency): on standby to every DSL and the head.
            text = textalerts.repeat_sms_text(visit, alarm, now, ctx.policy, phones)
            tx.stand_by(textalerts.standby_for(visit, alerts.repeat_messages(visit, alarm, now, ctx.policy, phones), text, ctx.policy), now, visit.id)
            continue
        texts, standby = textalerts.tier_texts(visit, alarm, now, ctx.policy, phones)
        queued += tx.send(texts, now, visit.id)
        # After the tier's own texts: a person already texted by the tier is not put on standby too (same key).
        tx.stand_by(standby, now, visit.id)
        if visit.drill:
            # The drill report lists each text by its outbox key: sent, refused, or never needed.
            for message in (*texts, *standby):
                drills.add_message(tx, visit.id, alarm.tier, message.to, message.key, now)  # type: ignore[arg-type]
    return queued


def arm_texts(ctx: Ctx) -> int:
    """Standby SMS whose tier chat has not delivered within delivery_fallback_after, or nobody acknowledged within
    sms_after, are sent now."""
    if ctx.policy.notify is None:
        return 0
    now = ctx.now()
    sms_after = ctx.policy.sms_after
    with ctx.store.transaction() as tx:
        armed = tx.arm_texts(now, now - ctx.policy.delivery_fallback_after, now - sms_after if sms_after else None)
        armed += drills.arm_texts(tx, now, ctx.policy.delivery_fallback_after, sms_after)
        for row_id, visit_id, why in armed:
            tx.audit("visitsafe", "sms_armed", now, visit_id, outbox=row_id, why=why)
    for row_id, visit_id, why in armed:
        log.warning("outbox %s: SMS about visit %s queued (%s)", row_id, visit_id, why)
    return len(armed)


def stand_by_emergency(ctx: Ctx, tx: Tx, visit: Visit, chat: list[Message], now: datetime) -> None:
    """In the alarm's own transaction: an SMS on standby for each person an SOS or duress alarm's chat alerts reach."""
    text = textalerts.emergency_sms_text(visit, now, ctx.policy, ctx.phone)
    tx.stand_by(textalerts.standby_for(visit, chat, text, ctx.policy), now, visit.id)


def text_sent(tx: Tx, message: Message, visit_id: int, row_id: int, now: datetime, ctx: Ctx) -> None:
    """An SMS or email about a visit has gone: every chat alert of it to a responder says where it is already being
    handled: those still waiting in their text, those delivered by one update each (through the outbox)."""
    visit = tx.visit(visit_id)
    team = list(visit.team) if visit is not None else []
    note = textalerts.sent_note(message, now, ctx.policy)
    # Never the visiting team's own messages: under duress that would tell whoever watches their screen.
    tx.note_waiting_alerts(visit_id, note, exclude=team)
    updates = [
        replace(latest, notes=(*latest.notes, note), key=f"update:{ref}:by-text-{row_id}", ref=None, replaces=ref, fallback=())
        for ref, latest in tx.delivered_chat_alerts(visit_id, exclude=team)
    ]
    tx.send(updates, now, visit_id)


def tell_texted_it_is_over(ctx: Ctx, tx: Tx, visit: Visit, now: datetime) -> list[Message]:
    """Someone confirmed the visitor safe: everyone texted about this visit hears it is over, once each."""
    return textalerts.all_clear(visit, tx.texted_people(visit.id or 0), now, ctx.policy)
