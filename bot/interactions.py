"""What every platform adapter shares around commands/: the help text, the honest apology, and the checks
that buttons need before they act (so Slack and Google Chat answer a person alike)."""
from __future__ import annotations

import logging
from typing import Callable

from commands.context import CommandError, Ctx, Reply
from bot import forms
from commands import aftervisit
from commands.logsafe import log_failure

log = logging.getLogger("visitsafe.interactions")

HELP = (
    "*VisitSafe*\n"
    "`/visit` request a home visit · `/out [45m|14:30]` sign out · `/checkin` I'm OK · `/extend 20m` running late ·"
    " `/next` next address of a round · `/back [home]` signed back in · `/sos [note]` emergency · `/visits` today's board ·"
    " `/visitsafe duress` set your private duress word · `/visitsafe drill [60]` DSL, head: test the alert ladder ·"
    " `/concern` a safeguarding concern during a visit · `/visits record 12` a visit's record · `/register` the register (DSL and head)"
)

FAILED = Reply(
    ":x: Something went wrong on our side and nothing was changed. Please try again;"
    " if it keeps happening, phone the office."
)


def answer(run: Callable[[], Reply], where: str = "command") -> Reply:
    """Run a command; a refusal becomes the reply that says why, a crash an honest apology."""
    try:
        return run()
    except CommandError as exc:
        return Reply(f":warning: {exc}")
    except Exception as exc:  # noqa: BLE001 - the user must always hear back
        log_failure(log, where, exc)
        return FAILED


def team_check(ctx: Ctx, user: str, visit_id: int) -> None:
    """Only someone on the visit (the visitor or a companion) may extend it."""
    visit = ctx.store.read().visit(visit_id)
    if visit is None or user not in visit.team:
        raise CommandError("Only the visitor or a companion can extend this visit.")


def on_own_visit(ctx: Ctx, run: Callable[[str], Reply]) -> Callable[[str, int], Reply]:
    """An old button from another visit must not act on the visit the clicker is on now."""

    def checked(user: str, visit_id: int) -> Reply:
        live = ctx.store.read().live_visit_of(user)
        if live is None or live.id != visit_id:
            now_on = f" You are out on visit #{live.id} now." if live else ""
            raise CommandError(
                f"That button was for visit #{visit_id}, which you are not out on: nothing was changed.{now_on}"
                " Use `/checkin`, `/next`, `/extend 20m` or `/back` for the visit you are on."
            )
        return run(user)

    return checked


def outcome_form(ctx: Ctx, user: str, kind: str, visit_id: int) -> forms.Form:
    """The form behind an outcome button, once the clicker may give the visit's outcome (Nobody home: the policy's
    cards, the one it asks for this time preselected)."""
    if kind == "nobody_home":
        return forms.nobody_home(visit_id, *aftervisit.nobody_home_choice(ctx, user, visit_id))
    aftervisit.check_can_give(ctx, user, visit_id)
    return forms.BY_CALLBACK[forms.FORM_OF[kind]](visit_id)  # type: ignore[call-arg]
