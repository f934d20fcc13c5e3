"""/visits: today's visits, who is out and when they are due back."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from commands.context import Ctx, Reply
from flows.messages import esc, mention
from flows import notices, watch
from flows.notices import clock, state_words
from flows.policy import Role
from flows.visit import LIVE, State, overdue_by
from storage.store import BoardRow

# St Patrick's: "do not discuss individual home visits with staff who are not involved".
SEES_ALL = {Role.office, Role.dsl, Role.head}
# Visits listed by name besides those out now: more would not fit a chat message (Slack shows ~45 sections).
BOARD_OTHERS = 200
# Requests waiting for this person's decision listed by name (the soonest); the rest are counted, each decided from its DM.
BOARD_WAITING = 20


# Board lines by what decides them (see today()): every board draws the same few hundred lines again.
_LINES: dict[tuple[object, ...], str] = {}
_LINES_MAX = 20000


def _line(v: BoardRow, late_minutes: int | None, ctx: Ctx) -> str:
    """One visit's line on the board (`late_minutes`: how long past its return a live visit is, None if not)."""
    who = ", ".join(mention(u) for u in v.team)
    if v.state in LIVE and v.expected_return:
        status = "out" if late_minutes is None else f"*OVERDUE* by {late_minutes} min"
        circle = "large_blue_circle" if late_minutes is None else "red_circle"
        return f":{circle}: #{v.id} {who}: {status}, due back {clock(v.expected_return, ctx.policy)}"
    if v.state is State.returned and v.returned_at:
        where = "gone home" if v.returned_home else "back"
        return f":white_check_mark: #{v.id} {who}: {where} at {clock(v.returned_at, ctx.policy)}"
    return f":white_circle: #{v.id} {who}: {state_words(v.state.value)}, planned {clock(v.start_at, ctx.policy)}"


def today(ctx: Ctx, user: str) -> Reply:
    """The office board for today; staff without an overseeing role see only their own visits."""
    now = ctx.now()
    local = now.astimezone(ctx.policy.tz)
    start = datetime.combine(local.date(), time(0), tzinfo=ctx.policy.tz)
    tx = ctx.store.read()
    everyone = bool(ctx.policy.roles.of(user) & SEES_ALL)
    # Only the columns the board prints, and only the visits this person may see.
    if everyone:
        # Every live visit, always; of the rest, as many as a chat message can usefully show, and counts.
        rows, unlisted = tx.board_rows_capped(start, start + timedelta(days=1), BOARD_OTHERS)
    else:
        rows, unlisted = tx.board_rows(start, start + timedelta(days=1), member=user), {}
    # Their own visits in full: nothing the visiting team sees may reveal an alarm they signed back in under.
    own = {r.id: tx.visit(r.id) for r in rows if user in r.team}
    visits = [BoardRow.of(watch.as_the_team_sees(own[r.id])) if r.id in own else r for r in rows]  # type: ignore[arg-type]
    # As approvers_for(slot, policy, team) would say (one of the slot's roles, not on the visit), without listing everyone per row.
    mine = ctx.policy.roles.of(user)
    waiting = [w for w in tx.awaiting_decision_of(user) if user not in w.team and any(mine.intersection(slot.roles) for slot in w.open_slots)]
    pending = [f"*Waiting for your decision* ({len(waiting)})"] + [
        f":hourglass: #{v.id} from {mention(v.requester)}, planned {notices.when(v.start_at, ctx.policy)}: see my DM to Approve or Decline"
        for v in waiting[:BOARD_WAITING]  # the soonest first (awaiting_decision_of is in start order)
    ] if waiting else []
    if len(waiting) > BOARD_WAITING:
        pending.append(f"…and {len(waiting) - BOARD_WAITING:,} more waiting for your decision, not listed: open each from its request DM.")
    if not visits:
        none = "No home visits today." if everyone else "You have no home visits today."
        return Reply("\n".join([none, *pending]))
    lines = [f"*Home visits today, {local:%a %d %b}* (as of {local:%H:%M})"]
    if len(_LINES) > _LINES_MAX:
        _LINES.clear()
    for v in sorted(visits, key=lambda v: (v.state not in LIVE, v.start_at)):
        late = overdue_by(v, now) if v.state in LIVE and v.expected_return else None
        # Minutes overdue, or None when not overdue: with the row and the time zone, all a line depends on.
        key = (v, None if not late else int(late.total_seconds() // 60), ctx.policy.tz)
        line = _LINES.get(key)
        if line is None:
            line = _LINES[key] = _line(v, key[1], ctx)
        lines.append(line)
        if user in v.team:
            lines[-1] += f" ({esc(own[v.id].details.pupil_ref)})"  # type: ignore[union-attr]
    if unlisted:
        counts = ", ".join(f"{n:,} {state_words(state)}" for state, n in sorted(unlisted.items()))
        lines.append(f"…and {sum(unlisted.values()):,} more today, not listed ({counts}). Every visit out now is listed above.")
    return Reply("\n".join([*lines, *pending]))
