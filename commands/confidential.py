"""/confidential: open a private conversation between a family support worker and a member of the ELT."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from commands.context import CannotOpen, CommandError, Ctx, Reply
from commands.logsafe import log_failure
from flows import actions
from flows import confidential as rules
from flows.messages import Button, channel_ref, mention
from flows.policy import Role
from flows.visit import NotAllowed

log = logging.getLogger("visitsafe.confidential")


@dataclass(frozen=True)
class Opening:
    """What `/confidential` will open: the visit it is about (if any) and whom the opener may pick."""

    visit_id: int | None
    choices: tuple[str, ...]


def opening(ctx: Ctx, user: str, visit_id: int | None) -> Opening:
    """Whom `user` may open a confidential conversation with, about this visit; refused unless allowed."""
    visit = ctx.store.read().visit(visit_id) if visit_id is not None else None
    try:
        return Opening(visit_id, rules.choices(ctx.policy, user, visit_id, visit))
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None


def begin(ctx: Ctx, user: str, text: str) -> Opening:
    """`/confidential [visit]`, checked before anything is opened."""
    try:
        visit_id = rules.visit_number(text)
    except NotAllowed as exc:
        raise CommandError(str(exc)) from None
    return opening(ctx, user, visit_id)


def check_pick(ctx: Ctx, user: str, other: str, visit_id: int | None) -> None:
    """The person picked in the form is one `user` may open a conversation with (checked again, not trusted)."""
    if other not in opening(ctx, user, visit_id).choices:
        raise CommandError("Choose one of the people listed: nothing was opened.")


def button(ctx: Ctx, user: str, visit_id: int) -> tuple[Button, ...]:
    """A family support worker's button to open a confidential conversation about their visit (none for others)."""
    if Role.family_support not in ctx.policy.roles.of(user):
        return ()
    try:
        opening(ctx, user, visit_id)
    except CommandError:
        return ()
    return (Button("Confidential chat with ELT", actions.CONFIDENTIAL, str(visit_id)),)


def open_with(ctx: Ctx, user: str, other: str, visit_id: int | None) -> Reply:
    """Open the conversation on the platform first, then record it and queue its one opening message together."""
    check_pick(ctx, user, other, visit_id)
    try:
        conversation = ctx.open_private_conversation([user, other])
    except CannotOpen as exc:
        raise CommandError(
            f"I could not open the confidential conversation with {mention(other)} (the chat service said `{exc}`):"
            " nothing was opened or recorded. Please try again in a minute."
        ) from None
    now = ctx.now()
    try:
        with ctx.store.transaction() as tx:
            record = tx.add_confidential(user, other, conversation, now, visit_id)
            tx.audit(user, "confidential_opened", now, visit_id, with_user=other, conversation=conversation, record=record)
            tx.send([rules.opening_message(conversation, user, other, visit_id, now, ctx.policy, record)], now, visit_id)
    except Exception as exc:  # noqa: BLE001 - the conversation exists: the person must hear it was not recorded
        log_failure(log, "recording a confidential conversation", exc)
        raise CommandError(
            f"The conversation with {mention(other)} is open (among your direct messages), but I could not record"
            " that it exists, so I posted nothing in it. Please run `/confidential` again in a minute: it reopens"
            " the same conversation and records it."
        ) from None
    ctx.wake()
    if conversation == ctx.policy.confidential_fallback_space:
        return Reply(
            f":lock: I could not create a private space for you and {mention(other)} (your Workspace administrator has"
            f" not approved spaces created by VisitSafe), so I opened it in the school's confidential space {channel_ref(conversation)}"
            " instead: write to them there. VisitSafe keeps only that it exists (who, when, which visit), never what you write there."
        )
    return Reply(
        f":lock: I opened a confidential conversation between you and {mention(other)}: it is among your direct"
        " messages. VisitSafe keeps only that it exists (who, when, which visit), never what you write there."
    )
