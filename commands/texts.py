"""SMS and email in the sweep: a tier's texts queued with its chat alerts, and standby texts sent when chat fails."""
from __future__ import annotations

import logging
from datetime import datetime

from commands.context import Ctx
from flows import textalerts
from flows.alerts import Phones
from flows.visit import Visit
from flows.watch import Alarm
from storage.store import Tx

log = logging.getLogger("visitsafe.sweep")


def queue_texts(ctx: Ctx, tx: Tx, visit: Visit, alarms: list[Alarm], now: datetime, phones: Phones) -> int:
    """In the tier's own transaction: its sms:/email: audiences queued, and an SMS per person of the tier on standby."""
    queued = 0
    for alarm in alarms:
        texts, standby = textalerts.tier_texts(visit, alarm, now, ctx.policy, phones)
        queued += tx.send(texts, now, visit.id)
        # After the tier's own texts: a person already texted by the tier is not put on standby too (same key).
        tx.stand_by(standby, now, visit.id)
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
        for row_id, visit_id, why in armed:
            tx.audit("visitsafe", "sms_armed", now, visit_id, outbox=row_id, why=why)
    for row_id, visit_id, why in armed:
        log.warning("outbox %s: SMS about visit %s queued (%s)", row_id, visit_id, why)
    return len(armed)
