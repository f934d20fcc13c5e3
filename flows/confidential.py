"""The confidential conversation: who may open one with whom, and the one message the bot posts in it.

Hampton: "A Google chat is set up with a member of the ELT to communicate confidentiality if needs be."
A family support worker opens it with a member of the ELT (or an ELT member with a family support
worker). The bot records that it exists (who, when, with whom, which visit), never what is said in it.
"""
from __future__ import annotations

import re
from datetime import datetime

from flows.messages import Message, mention
from flows.notices import when
from flows.policy import Policy, Role
from flows.visit import NotAllowed, Visit

REFUSED = "Only family support workers and members of the ELT can open a confidential conversation: nothing was opened."
USAGE = "Write `/confidential` on its own, or with the number of your visit, like `/confidential 12`: nothing was opened."
NOBODY = {
    Role.elt: "Nobody else holds the ELT role in the school's policy, so there is no one to open a confidential conversation with: ask the office to add the ELT under `roles.elt`.",
    Role.family_support: "Nobody else holds the family support role in the school's policy, so there is no one to open a confidential conversation with.",
}
VISIT_NUMBER = re.compile(r"#?([1-9][0-9]{0,11})")


def visit_number(text: str) -> int | None:
    """The visit named after `/confidential` (`12` or `#12`), None for none; anything else is refused with the usage."""
    text = text.strip()
    if not text:
        return None
    found = VISIT_NUMBER.fullmatch(text)
    if found is None:
        raise NotAllowed(USAGE)
    return int(found.group(1))


def other_side(policy: Policy, user: str) -> Role:
    """The role of the person `user` opens a conversation with: a worker talks to the ELT, the ELT to a worker."""
    roles = policy.roles.of(user)
    if Role.family_support in roles:
        return Role.elt
    if Role.elt in roles:
        return Role.family_support
    raise NotAllowed(REFUSED)


def choices(policy: Policy, user: str, visit_id: int | None, visit: Visit | None) -> tuple[str, ...]:
    """Who `user` may open a confidential conversation with (about visit `visit_id`, found as `visit`)."""
    side = other_side(policy, user)
    people = tuple(p for p in policy.roles.holders(side) if p != user)
    if visit_id is not None and side is Role.elt and (visit is None or user not in visit.team):
        raise NotAllowed(f"Visit #{visit_id} is not one of yours: you can only open a confidential conversation about a visit you are on. Nothing was opened.")
    if visit_id is not None and side is Role.family_support:
        # An ELT member opens it with the family support worker who is on that visit.
        people = tuple(p for p in people if visit is not None and p in visit.team)
        if not people:
            raise NotAllowed(f"No family support worker is on visit #{visit_id}: nothing was opened. Write `/confidential` on its own to choose one.")
    if not people:
        raise NotAllowed(NOBODY[side])
    return people


def opening_message(conversation: str, opened_by: str, with_user: str, visit_id: int | None, now: datetime, policy: Policy, record: int) -> Message:
    """The one message the bot posts in the conversation: who opened it, when, which visit; no address, no name of a child."""
    about = f", about visit #{visit_id}" if visit_id is not None else ""
    return Message(
        to=conversation,
        text=(
            f":lock: *Confidential conversation* opened by {mention(opened_by)} with {mention(with_user)}"
            f" on {when(now, policy)}{about}.\n"
            "VisitSafe records only that this conversation exists (who, when, which visit), never what is"
            " written here, and posts nothing else in it."
        ),
        key=f"confidential:{record}",
    )
