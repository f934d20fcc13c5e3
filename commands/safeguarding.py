"""After the visit, the DSL's side: `/concern`, `/register` (flags, review, clear, the meeting list),
`/visits record N` with its referrals and sharings, and the referral follow-up reminders the sweep sends."""
from __future__ import annotations

from datetime import datetime, time
from typing import Any, Callable

from commands.context import CommandError, Ctx, Reply
from flows import actions
from flows import safeguarding as rules
from flows.messages import Button, esc, mention
from flows.notices import state_words, when
from flows.risk import Flag
from flows.visit import LIVE, Visit

REGISTER_USAGE = (
    "Write `/register` (the open flags), `/register add`, `/register review 3`, `/register clear 3`,"
    " `/register meeting` (the Vulnerable Children's Meeting list) or `/register meeting held`."
)
NOT_OUT = (
    "You are not out on a visit now, so there is nothing to attach a concern to. After `/back`, choose"
    " *Safeguarding concern* among the outcome buttons; if a child is in immediate danger, call 999."
)
INCIDENT_KINDS = ("incident", "left_unsafe")


def _day_start(ctx: Ctx, day: Any, at: time = time(0)) -> datetime:
    return datetime.combine(day, at, tzinfo=ctx.policy.tz)


def _today(ctx: Ctx) -> Any:
    return ctx.now().astimezone(ctx.policy.tz).date()


def _number(text: str, usage: str) -> int:
    text = text.strip().lstrip("#")
    if not (text.isascii() and text.isdigit() and 0 < len(text) <= 12 and text[0] != "0"):
        raise CommandError(usage)
    return int(text)


# ----- /concern -----


def concern_visit(ctx: Ctx, user: str) -> int:
    """The visit a `/concern` is about: the one `user` is out on now (refused when none)."""
    live = ctx.store.read().live_visit_of(user)
    if live is None or live.id is None:
        raise CommandError(NOT_OUT)
    return live.id


def raise_concern(ctx: Ctx, user: str, visit_id: int, answers: dict[str, Any]) -> Reply:
    """Store the concern as part of the visit's record and send it at once to the safeguarding channel and the DSLs."""
    text = rules.validate_concern(answers)
    now = ctx.now()
    with ctx.store.transaction() as tx:
        visit = tx.visit(visit_id)
        if visit is None or user not in visit.team:
            raise CommandError(f"Visit #{visit_id} is not one you went on: nothing was sent. Use `/concern` while you are out.")
        concern_id = tx.add_concern(visit_id, "concern", user, now, {"concern": text})
        tx.audit(user, "concern_raised", now, visit_id, concern=concern_id)
        tx.send(rules.concern_messages(visit, concern_id, user, text, now, ctx.policy), now, visit_id)
    ctx.wake()
    return Reply(
        f":white_check_mark: Your concern went at once to the DSLs and the safeguarding team (not the office). It is part of"
        f" visit #{visit_id}'s record. If a child is in immediate danger, call 999."
    )


# ----- /register -----


def check_register(ctx: Ctx, user: str) -> None:
    """Only the DSL and the head may read or change the register."""
    if not rules.may_use_register(ctx.policy, user):
        raise CommandError(rules.REGISTER_REFUSED)


def register_command(ctx: Ctx, user: str, text: str) -> Reply:
    """`/register [list | add | review N | clear N | meeting | meeting held]`, for the DSL and the head only."""
    check_register(ctx, user)
    words = text.strip().split()
    verb = words[0].lower() if words else "list"
    rest = " ".join(words[1:])
    if verb == "list" and not rest:
        return flag_list(ctx)
    if verb == "add" and not rest:
        return Reply("Add a flag to the register: an address, a family, or both.", buttons=(Button("Add a flag", actions.REGISTER_ADD, "add", "primary"),))
    if verb == "review":
        return review(ctx, user, _number(rest, REGISTER_USAGE))
    if verb == "clear":
        flag_id = _number(rest, REGISTER_USAGE)
        check_clear(ctx, user, flag_id)
        return Reply(f"Clear flag #{flag_id}: a note of why is needed, and is kept in its history.",
                     buttons=(Button(f"Clear flag #{flag_id}", actions.REGISTER_CLEAR, str(flag_id), "danger"),))
    if verb == "meeting" and not rest:
        return meeting_list(ctx)
    if verb == "meeting" and rest.lower() == "held":
        return meeting_held(ctx, user)
    raise CommandError(f"I did not understand `/register {esc(text.strip()[:60])}`. {REGISTER_USAGE}")


def _flag_line(ctx: Ctx, row: dict[str, Any]) -> str:
    on = esc(row["label"]) if row["label"] else (f"the family and address of visit #{row['visit_id']}" if row["visit_id"] else "an address")
    words = rules.FLAG_WORDS.get(Flag(row["flag"]), row["flag"])
    line = f"#{row['id']} *{words}* on {on}: {esc(row['reason'])} ({mention(row['author'])}, {when(row['created_at'], ctx.policy)})"
    if row["cleared_at"] is not None:
        line += f"; cleared by {mention(row['cleared_by'])} on {when(row['cleared_at'], ctx.policy)}: {esc(row['clear_note'] or '')}"
    return line


def flag_list(ctx: Ctx) -> Reply:
    """Every open flag, oldest first."""
    rows = ctx.store.read().open_flags()
    add = (Button("Add a flag", actions.REGISTER_ADD, "add", "primary"),)
    if not rows:
        return Reply("The register has no open flags.", buttons=add)
    lines = [f"*The register* ({len(rows)} open flag{'s' if len(rows) != 1 else ''})", *(f"• {_flag_line(ctx, r)}" for r in rows)]
    return Reply("\n".join(lines), buttons=add, notes=("`/register review 3` shows a flag's history; `/register clear 3` clears it with a note.",))


def _entry(ctx: Ctx, flag_id: int) -> dict[str, Any]:
    entry = ctx.store.read().register_entry(flag_id)
    if entry is None:
        raise CommandError(f"There is no flag #{flag_id} on the register. `/register` lists the open flags.")
    return entry


def review(ctx: Ctx, user: str, flag_id: int) -> Reply:
    """One flag in full, with the history of every flag on the same address or family."""
    entry = _entry(ctx, flag_id)
    history = [r for r in ctx.store.read().register_history(entry) if r["id"] != flag_id]
    lines = [f"*Flag #{flag_id}*" + (" (cleared)" if entry["cleared_at"] else " (open)"), _flag_line(ctx, entry)]
    if history:
        lines += ["*History of the same address or family*", *(f"• {_flag_line(ctx, r)}" for r in history)]
    buttons = () if entry["cleared_at"] else (Button(f"Clear flag #{flag_id}", actions.REGISTER_CLEAR, str(flag_id), "danger"),)
    return Reply("\n".join(lines), buttons=buttons)


def check_clear(ctx: Ctx, user: str, flag_id: int) -> None:
    """The DSL or head may clear a flag that is still open."""
    check_register(ctx, user)
    if _entry(ctx, flag_id)["cleared_at"] is not None:
        raise CommandError(f"Flag #{flag_id} is already cleared: `/register review {flag_id}` shows who cleared it and why.")


def add_flag(ctx: Ctx, user: str, answers: dict[str, Any]) -> Reply:
    """The add-a-flag form submitted."""
    check_register(ctx, user)
    new = rules.validate_flag(answers)
    now = ctx.now()
    with ctx.store.transaction() as tx:
        flag_id = tx.add_register_flag(new.flag, new.reason, user, now, new.address, new.pupil_ref, new.label)
        tx.audit(user, "register_flag_added", now, flag=flag_id, kind=new.flag.value)
    return Reply(f":white_check_mark: Flag #{flag_id} added: *{rules.FLAG_WORDS[new.flag]}* on {esc(new.label)}. Every `/visit` is checked against it.")


def clear_flag(ctx: Ctx, user: str, flag_id: int, answers: dict[str, Any]) -> Reply:
    """The clear form submitted: the flag is cleared with the note, kept in its history."""
    check_clear(ctx, user, flag_id)
    note = rules.validate_note(answers)
    now = ctx.now()
    with ctx.store.transaction() as tx:
        if not tx.clear_flag(flag_id, user, note, now):
            raise CommandError(f"Flag #{flag_id} is already cleared.")
        tx.audit(user, "register_flag_cleared", now, flag=flag_id)
    return Reply(f":white_check_mark: Flag #{flag_id} is cleared; your note is kept in its history (`/register review {flag_id}`).")


# ----- the Vulnerable Children's Meeting -----


def meeting_list(ctx: Ctx) -> Reply:
    """Flags under review, and the incidents, concerns and referrals since the last meeting (drills and allegations left out)."""
    tx = ctx.store.read()
    since = tx.last_meeting()
    reviews = tx.open_flags(Flag.under_review)
    incidents = tx.concerns_since(since, INCIDENT_KINDS)
    concerns = tx.concerns_since(since, ("concern",))
    referrals = tx.referrals_where(
        "logged_at > ? AND COALESCE(visit_id, 0) NOT IN (SELECT id FROM visits WHERE drill = 1)", [since.timestamp() if since else -1.0]
    )
    period = f"since the last meeting on {when(since, ctx.policy)}" if since else "everything so far (no meeting marked held yet)"

    def report(r: dict[str, Any]) -> str:
        family = f" ({esc(r['pupil_ref'])})" if r["pupil_ref"] else ""
        return f"• visit #{r['visit_id']}{family}: {rules.KIND_WORDS[r['kind']]}, {when(r['raised_at'], ctx.policy)}, raised by {mention(r['raised_by'])}"

    lines = [f"*Vulnerable Children's Meeting list*: {period}", f"*Under review* ({len(reviews)})", *(f"• {_flag_line(ctx, r)}" for r in reviews)]
    lines += [f"*Incidents* ({len(incidents)})", *map(report, incidents)]
    lines += [f"*Concerns* ({len(concerns)})", *map(report, concerns)]
    lines += [f"*Referrals* ({len(referrals)})", *(_referral_line(ctx, r) for r in referrals)]
    return Reply("\n".join(lines), notes=("Once the meeting is held, `/register meeting held` starts the next period.",))


def meeting_held(ctx: Ctx, user: str) -> Reply:
    """Mark the meeting held now: the next list starts from here."""
    now = ctx.now()
    with ctx.store.transaction() as tx:
        meeting = tx.add_meeting(now, user)
        tx.audit(user, "meeting_held", now, meeting=meeting)
    return Reply(f":white_check_mark: Meeting marked held on {when(now, ctx.policy)}. The next list starts from now; flags under review stay on it until cleared.")


# ----- a visit's record -----


def visits_command(ctx: Ctx, user: str, text: str, otherwise: Callable[[], Reply]) -> Reply:
    """`/visits record N` shows a visit's record; anything else is the board."""
    words = text.strip().split()
    if words[:1] and words[0].lower() == "record":
        return record(ctx, user, _number(" ".join(words[1:]), "Write the visit's number, like `/visits record 12`."))
    return otherwise()


def check_record(ctx: Ctx, user: str, visit_id: int) -> Visit:
    """The visit, if `user` may see its record; a plain refusal (nothing shown) otherwise, or when there is no such visit."""
    visit = ctx.store.read().visit(visit_id)
    if visit is None or not rules.may_see_record(ctx.policy, user, visit):
        raise CommandError(rules.RECORD_REFUSED.format(visit_id=visit_id))
    return visit


def _referral_line(ctx: Ctx, r: dict[str, Any]) -> str:
    line = (f"• visit #{r['visit_id']}: to *{esc(r['agency'])}* on {r['referred_on'].astimezone(ctx.policy.tz):%a %d %b %Y}"
            f" by {mention(r['referred_by'])}, family consent: {'yes' if r['consent'] else 'no'}")
    if r["follow_up_on"] is not None:
        line += f", follow up {r['follow_up_on'].astimezone(ctx.policy.tz):%a %d %b}" + (" (reminder sent)" if r["reminded_at"] else "")
    return line


def record(ctx: Ctx, user: str, visit_id: int) -> Reply:
    """A visit's record: its outcome, safeguarding reports, recording, referrals and information shared."""
    visit = check_record(ctx, user, visit_id)
    tx = ctx.store.read()
    team = ", ".join(mention(u) for u in visit.team)
    lines = [
        f"*Visit #{visit_id} record*: *{esc(visit.details.pupil_ref)}*, {esc(visit.details.address)}",
        f"{team}; planned {when(visit.start_at, ctx.policy)}; {state_words(visit.state.value)}",
    ]
    outcome = tx.outcome_of(visit_id)
    if outcome is None:
        lines.append("Outcome: " + ("still out" if visit.state in LIVE else "not given yet"))
    else:
        card = f" (card left: {esc(outcome['card'])})" if outcome["card"] else ""
        lines.append(f"Outcome: *{rules.OUTCOME_WORDS.get(outcome['outcome'], outcome['outcome'])}*{card}, from {mention(outcome['given_by'])} {when(outcome['given_at'], ctx.policy)}")
    status = tx.record_status(visit_id)
    if status is None:
        lines.append("Recorded on CPOMS: not asked yet")
    elif status["recorded_at"] is not None:
        lines.append(f"Recorded on CPOMS by {mention(status['recorded_by'])} {when(status['recorded_at'], ctx.policy)}")
    else:
        lines.append(f"Recorded on CPOMS: *not yet*; {mention(status['owner'])} is to record it by {when(status['due_at'], ctx.policy)}")
    reports = [c for c in tx.concerns_of(visit_id) if rules.sees_concern(ctx.policy, user, c["kind"], c["raised_by"])]
    lines.append(f"*Safeguarding reports* ({len(reports)})")
    for c in reports:
        detail = c["detail"] if isinstance(c["detail"], dict) else {}
        said = "; ".join(f"{esc(v)}" for v in detail.values() if isinstance(v, str) and v)
        lines.append(f"• {rules.KIND_WORDS.get(c['kind'], c['kind'])}, {when(c['raised_at'], ctx.policy)}, from {mention(c['raised_by'])}" + (f": {said}" if said else ""))
    referrals = tx.referrals_where("visit_id = ?", [visit_id])
    lines += [f"*Referrals* ({len(referrals)})", *(_referral_line(ctx, r) + (f": {esc(r['notes'])}" if r["notes"] else "") for r in referrals)]
    shares = tx.shares_of(visit_id)
    lines.append(f"*Information shared* ({len(shares)})")
    lines += [f"• {mention(s['shared_by'])} to {mention(s['shared_with'])} on {s['shared_at'].astimezone(ctx.policy.tz):%a %d %b %Y}: {esc(s['why'])}" for s in shares]
    buttons = (Button("Log a referral", actions.REFERRAL, str(visit_id)), Button("Log information shared", actions.SHARE, str(visit_id)))
    return Reply("\n".join(lines), buttons=buttons)


def log_referral(ctx: Ctx, user: str, visit_id: int, answers: dict[str, Any]) -> Reply:
    """The referral form submitted: logged on the visit's record, its follow-up reminder left to the sweep."""
    check_record(ctx, user, visit_id)
    new = rules.validate_referral(answers, _today(ctx))
    follow_up = _day_start(ctx, new.follow_up_on, ctx.policy.visiting_hours.start) if new.follow_up_on else None
    now = ctx.now()
    with ctx.store.transaction() as tx:
        referral = tx.add_referral(visit_id, new.agency, _day_start(ctx, new.referred_on), user, new.consent, follow_up, new.notes, now)
        tx.audit(user, "referral_logged", now, visit_id, referral=referral, consent=new.consent, follow_up=follow_up is not None)
    reminder = f" You will get a reminder on {follow_up:%a %d %b} at {follow_up:%H:%M}." if follow_up else ""
    return Reply(f":white_check_mark: Referral to {esc(new.agency)} logged on visit #{visit_id}'s record.{reminder}")


def log_share(ctx: Ctx, user: str, visit_id: int, answers: dict[str, Any]) -> Reply:
    """The sharing form submitted: who passed what to whom, when and why, on the visit's record."""
    check_record(ctx, user, visit_id)
    new = rules.validate_share(answers, _today(ctx), user)
    now = ctx.now()
    with ctx.store.transaction() as tx:
        share = tx.add_share(visit_id, user, new.shared_with, _day_start(ctx, new.shared_on), new.why, now)
        tx.audit(user, "information_shared", now, visit_id, share=share, shared_with=new.shared_with)
    return Reply(f":white_check_mark: Logged on visit #{visit_id}'s record: information passed to {mention(new.shared_with)}.")


def send_follow_ups(ctx: Ctx) -> int:
    """Referrals whose follow-up day has come: one reminder each to whoever made them, claimed once in the database."""
    now = ctx.now()
    queued = 0
    with ctx.store.transaction() as tx:
        for r in tx.referrals_where("follow_up_reminded_at IS NULL AND follow_up_on IS NOT NULL AND follow_up_on <= ?", [now.timestamp()]):
            if tx.claim_follow_up(r["id"], now):
                message = rules.follow_up_message(r["id"], r["visit_id"], r["agency"], r["referred_on"], r["referred_by"], ctx.policy)
                queued += tx.send([message], now, r["visit_id"])
                tx.audit("visitsafe", "referral_follow_up_sent", now, r["visit_id"], referral=r["id"])
    return queued
