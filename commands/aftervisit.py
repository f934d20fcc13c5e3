"""After the visit: the outcome buttons and forms, Recorded, the debrief answer, and the sweep's timers for them."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from commands.context import CommandError, Ctx, Reply
from flows import aftervisit
from flows.aftervisit import BUTTON_OF, OUTCOME_REMINDER_AFTER, OUTCOMES, REPORTS, UNDER_REVIEW  # noqa: F401 - BUTTON_OF for the adapters
from flows.messages import Message, mention
from flows.request import FieldErrors
from flows.visit import State, Visit
from flows.watch import as_the_team_sees
from storage.store import Tx

# The answers each report form must have, by kind (Chat does not enforce a field's required flag).
REQUIRED: dict[str, dict[str, str]] = {
    "concern": {"what": "Say what the concern is."},
    "incident": {"what": "Say what happened.", "injuries": "Write none if there were none.",
                 "abuse": "Choose yes or no.", "police": "Choose yes or no."},
    "left_unsafe": {"why": "Say what made you feel unsafe."},
    "allegation": {"about": "Say against whom or about what.", "what": "Say what was said."},
}
# The answers kept from each form (anything else a client sends is ignored).
KEPT: dict[str, tuple[str, ...]] = {
    "concern": ("what", "child_seen"),
    "incident": ("what", "injuries", "abuse", "police"),
    "left_unsafe": ("why",),
    "allegation": ("about", "what"),
}
YES_NO_FIELDS = ("child_seen", "abuse", "police")


def signed_in(ctx: Ctx, tx: Tx, visit: Visit, now: datetime) -> None:
    """A visit is over as its team sees it: ask the visitor its outcome and start its recording timers (once)."""
    returned = visit.returned_at or now
    if tx.ask_outcome(visit.id, visit.requester, now, now + OUTCOME_REMINDER_AFTER):  # type: ignore[arg-type]
        tx.send([aftervisit.outcome_prompt(visit, visit.requester, ctx.policy)], now, visit.id)
    timers = aftervisit.record_timers(returned, ctx.policy)
    tx.open_record(visit.id, visit.requester, timers.remind_at, timers.due_at)  # type: ignore[arg-type]


def _when(moment: datetime, ctx: Ctx) -> str:
    return aftervisit.moment_words(moment, ctx.now(), ctx.policy)


def _open_for_outcome(ctx: Ctx, tx: Tx, user: str, visit_id: int) -> Visit:
    """The visit, if this user may give its outcome now: on the visit, the visit over, no outcome yet."""
    visit = tx.visit(visit_id)
    if visit is None:
        raise CommandError("That visit no longer exists.")
    if user not in visit.team:
        raise CommandError(f"Only the visitor or a companion on visit #{visit_id} can give its outcome: nothing was recorded.")
    if as_the_team_sees(visit).state not in (State.returned, State.closed):
        raise CommandError(f"Visit #{visit_id} is not over yet: give its outcome after `/back`.")
    given = tx.outcome_of(visit_id)
    if given is not None:
        raise CommandError(
            f"Visit #{visit_id} already has an outcome: *{aftervisit.outcome_words(given['outcome'], given['card'])}*,"
            f" given by {mention(given['given_by'])} at {_when(given['given_at'], ctx)}. Nothing was changed."
        )
    return visit


def check_can_give(ctx: Ctx, user: str, visit_id: int) -> None:
    """Before opening an outcome form: would this user's outcome count now?"""
    _open_for_outcome(ctx, ctx.store.read(), user, visit_id)


def nobody_home_choice(ctx: Ctx, user: str, visit_id: int) -> tuple[dict[str, str], str, str]:
    """Before opening the Nobody home form: the cards to choose from, the one the policy asks for, and what to say."""
    tx = ctx.store.read()
    visit = _open_for_outcome(ctx, tx, user, visit_id)
    advice = aftervisit.no_answer(visit, tx.earlier_no_answers(visit), ctx.policy)
    return aftervisit.card_choices(ctx.policy), advice.card, aftervisit.nobody_home_intro(visit, advice, ctx.policy)


def no_concerns(ctx: Ctx, user: str, visit_id: int) -> Reply:
    """The No concerns button."""
    return give(ctx, user, visit_id, "no_concerns", {})


def _checked_answers(kind: str, answers: dict[str, Any], ctx: Ctx) -> dict[str, str]:
    """The answers a form of this kind keeps, or FieldErrors naming each one missing or wrong."""
    if kind == "nobody_home":
        card = answers.get("card")
        if card not in aftervisit.card_choices(ctx.policy):
            raise FieldErrors({"card": "Choose the card you left."})
        return {"card": card}
    kept = {name: str(answers[name]).strip() for name in KEPT[kind] if isinstance(answers.get(name), str) and answers[name].strip()}
    errors = {name: why for name, why in REQUIRED[kind].items() if not kept.get(name)}
    errors.update({name: "Choose yes or no." for name in YES_NO_FIELDS if name in kept and kept[name] not in ("yes", "no")})
    if errors:
        raise FieldErrors(errors)
    return kept


def give(ctx: Ctx, user: str, visit_id: int, outcome: str, answers: dict[str, Any]) -> Reply:
    """Record a visit's outcome and send what it calls for, in one transaction: refused if the visit has one already."""
    if outcome not in OUTCOMES:
        raise CommandError("That is not an outcome I know.")
    kept = {} if outcome == "no_concerns" else _checked_answers(outcome, answers, ctx)
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = _open_for_outcome(ctx, tx, user, visit_id)
        card = kept.get("card")
        if not tx.add_outcome(visit.id, outcome, user, now, card=card, debrief_offered=outcome == "incident"):  # type: ignore[arg-type]
            raise CommandError(f"Visit #{visit_id} already has an outcome. Nothing was changed.")
        messages: list[Message] = []
        referred = False
        text = f"Thank you: the outcome of visit #{visit.id} is recorded as *{aftervisit.outcome_words(outcome, card)}*."
        if outcome == "nobody_home":
            advice = aftervisit.no_answer(visit, tx.earlier_no_answers(visit), ctx.policy)
            text = aftervisit.follow_up(advice, card)  # type: ignore[arg-type]
            referred = advice.refer
            if advice.refer:
                messages += aftervisit.referral(visit, advice, card, user, now, ctx.policy)  # type: ignore[arg-type]
        if outcome in REPORTS:
            tx.add_concern(visit.id, outcome, user, now, kept)
            messages += aftervisit.report(outcome, visit, kept, user, now, ctx.policy)
            told = {"concern": "the safeguarding channel and the DSLs", "incident": "the safeguarding channel",
                    "left_unsafe": "the DSL and the head", "allegation": "the head and the DSL"}[outcome]
            text += f" It has gone to {told}."
        if outcome in UNDER_REVIEW:
            tx.flag_for_review(visit, aftervisit.under_review_reason(outcome, visit), user, now)
            text += " The address and family are flagged under review: no new visit until it is reviewed."
        if outcome == "incident":
            messages.append(aftervisit.debrief_offer(visit, user, ctx.policy))
        asked = [(ref, to) for ref, key, to in _outcome_refs(tx, visit) if tx.was_queued(key)]
        messages += aftervisit.outcome_given(visit, outcome, card, user, now, asked, ctx.policy)
        record = tx.record_of(visit.id)
        if record is not None and record["recorded_at"] is None:
            messages.append(aftervisit.record_prompt(visit, record["owner"], record["due_at"], now, ctx.policy))
        tx.audit(user, "outcome", now, visit.id, outcome=outcome, card=card, referred=referred)
        tx.send(messages, now, visit.id)
    ctx.wake()
    return Reply(text)


def _outcome_refs(tx: Tx, visit: Visit) -> list[tuple[str, str, str]]:
    """(ref, key, to) of the outcome prompt and its reminder."""
    ask = tx.outcome_ask(visit.id)
    to = ask["visitor"] if ask else visit.requester
    return [(f"outcome:{visit.id}", f"outcome-ask:{visit.id}", to), (f"outcome-reminder:{visit.id}", f"outcome-reminder:{visit.id}", to)]


def recorded(ctx: Ctx, user: str, visit_id: int) -> Reply:
    """The Recorded button: the visit is recorded on CPOMS; its timers stop."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = tx.visit(visit_id)
        record = tx.record_of(visit_id)
        if visit is None or record is None:
            raise CommandError("That visit has nothing to record.")
        if user not in visit.team and user != record["owner"]:
            raise CommandError(f"Only the visitor or a companion on visit #{visit_id} can mark it recorded: nothing was changed.")
        if not tx.mark_recorded(visit_id, user, now):
            raise CommandError(
                f"Visit #{visit_id} was already marked recorded by {mention(record['recorded_by'])} at {_when(record['recorded_at'], ctx)}."
            )
        prompts = [(f"record:{visit_id}", f"record-ask:{visit_id}"), (f"record-reminder:{visit_id}", f"record-reminder:{visit_id}")]
        refs = [(ref, record["owner"]) for ref, key in prompts if tx.was_queued(key)]
        tx.audit(user, "recorded", now, visit_id, late=now > record["due_at"])
        tx.send(aftervisit.recorded(visit, user, now, refs, ctx.policy), now, visit_id)
    ctx.wake()
    return Reply(f"Thank you: visit #{visit_id} is marked recorded on CPOMS.")


def debrief(ctx: Ctx, user: str, visit_id: int, wanted: bool) -> Reply:
    """The visitor's answer to the debrief offer after an incident (recorded; a yes goes to the DSLs)."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = tx.visit(visit_id)
        given = tx.outcome_of(visit_id)
        if visit is None or given is None or given["debrief_offered_at"] is None:
            raise CommandError("No debrief was offered for that visit.")
        if user != given["given_by"]:
            raise CommandError("Only the person who reported the incident can answer this offer: nothing was changed.")
        if not tx.answer_debrief(visit_id, "yes" if wanted else "no", now):
            raise CommandError(f"You already answered *{given['debrief_answer']}* at {_when(given['debrief_answered_at'], ctx)}.")
        tx.audit(user, "debrief_answered", now, visit_id, wanted=wanted)
        tx.send(aftervisit.debrief_answered(visit, wanted, user, now, ctx.policy), now, visit_id)
    ctx.wake()
    return Reply("Thank you: the DSL will be in touch to arrange it." if wanted else "Thank you: your answer is recorded.")


def sweep(ctx: Ctx) -> int:
    """The outcome reminders and CPOMS timers that have come: each claimed in the database and sent once."""
    now = ctx.now()
    queued = 0
    with ctx.store.transaction() as tx:
        for visit_id, visitor in tx.claim_outcome_reminders(now):
            visit = tx.visit(visit_id)
            if visit is not None:
                queued += tx.send([aftervisit.outcome_reminder(visit, visitor, ctx.policy)], now, visit_id)
                tx.audit("visitsafe", "outcome_reminded", now, visit_id)
        for kind, column in (("reminder", "reminded_at"), ("overdue", "escalated_at")):
            for due in tx.claim_record_timers(now, column):
                visit = tx.visit(due["visit_id"])
                if visit is None:
                    continue
                if kind == "reminder":
                    messages = [aftervisit.record_reminder(visit, due["owner"], due["due_at"], now, ctx.policy)]
                else:
                    messages = aftervisit.record_overdue(visit, due["owner"], due["due_at"], now, ctx.policy)
                queued += tx.send(messages, now, visit.id)
                tx.audit("visitsafe", f"record_{kind}", now, visit.id)
    return queued
