"""Ladder drills: a marked test visit runs through the real ladder with its times compressed, and a report
says who was reached, on which channel, how fast each tier was acknowledged, who never answered and what to fix.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flows import actions
from flows.durations import format_duration
from flows.messages import Button, Message, is_person, mention, where
from flows.notices import clock
from flows.policy import Policy, Role, Tier
from flows.request import RiskAnswers, VisitDetails
from flows.risk import RiskAssessment
from flows.visit import NotAllowed, State, Visit, Watch

# Put first in every message of a drill, whatever the channel: nobody may take a drill for a real alert.
LABEL = "*DRILL*: a test of the alert ladder, nobody is in danger. Answer with the button, as fast as you would for real."
RUNNERS = {Role.dsl, Role.head}
DEFAULT_FACTOR = 60
MAX_FACTOR = 600
# After the last tier, acknowledgements are awaited at least this long (real seconds) before the report.
MIN_WINDOW = timedelta(minutes=1)
ACK_LABEL = "Seen (drill)"
# The Ofcom number reserved for drama: a responder who dials the drill's "contact number" reaches nobody.
DRILL_PHONE = "01632 960000"


def check_runner(user: str, policy: Policy) -> None:
    """Only a DSL or the head runs or stops a drill."""
    if not policy.roles.of(user) & RUNNERS:
        raise NotAllowed("Only a DSL or the head can run a ladder drill.")


def max_factor(policy: Policy) -> int:
    """The largest speed-up at which no two tiers come closer than one sweep (so each is timed on its own)."""
    ladder = policy.escalation
    gaps = [later.after - earlier.after for earlier, later in zip(ladder, ladder[1:])]
    if not gaps:
        return MAX_FACTOR
    return max(1, min(MAX_FACTOR, int(min(gaps) / policy.sweep_interval)))


def parse_factor(text: str, policy: Policy) -> int:
    """`/visitsafe drill [factor]`: how many times faster than real the ladder runs (default 60, or the most allowed)."""
    text = text.strip()
    most = max_factor(policy)
    if not text:
        return min(DEFAULT_FACTOR, most)
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise NotAllowed(
            f"'{text[:20]}' is not a speed-up: give a whole number of times faster, from 1 (real time) to {most},"
            f" like `/visitsafe drill {min(DEFAULT_FACTOR, most)}` (a minute of the ladder then takes a second)."
        )
    factor = int(text)
    if factor < 1:
        raise NotAllowed(f"The speed-up must be at least 1 (1 runs the ladder at real speed), and at most {most}.")
    if factor > most:
        gap = min((b.after - a.after for a, b in zip(policy.escalation, policy.escalation[1:])), default=timedelta(0))
        raise NotAllowed(
            f"{factor} times faster is too fast: tiers {format_duration(gap)} apart would come"
            f" {format_duration(gap / factor) if gap / factor >= timedelta(seconds=1) else 'under a second'} apart,"
            f" closer than the sweep's {format_duration(policy.sweep_interval)}, so they could not be timed apart."
            f" Use {most} or less."
        )
    return factor


def compressed(ladder: list[Tier] | tuple[Tier, ...], factor: int) -> tuple[Tier, ...]:
    """The ladder with every `after` divided by `factor` (whole seconds)."""
    return tuple(Tier(after=timedelta(seconds=round(t.after.total_seconds() / factor)), notify=t.notify) for t in ladder)


def window(policy: Policy, factor: int) -> timedelta:
    """How long after its last tier a drill waits for answers: when the real alert would first repeat, at least a minute."""
    return max(policy.repeat_interval / factor, MIN_WINDOW)


def drill_visit(user: str, now: datetime, factor: int, policy: Policy) -> Visit:
    """The marked test visit: `user` is its visitor, due back now, with the compressed ladder frozen onto it."""
    local = now.astimezone(policy.tz)
    details = VisitDetails(
        pupil_ref="DRILL", address="DRILL: no real visit", contact_phone=DRILL_PHONE, reason="other",
        reason_other="ladder drill", visit_type="doorstep", planned=True, date=local.date(),
        start_time=local.time().replace(microsecond=0, tzinfo=None), duration=timedelta(minutes=1), travel_mode="other",
        travel_details="DRILL: no travel", parents_informed=True,
    )
    return Visit(
        requester=user, details=details, answers=RiskAnswers(), assessment=RiskAssessment(level="low"), slots=(),
        created_at=now, start_at=now, state=State.out, departed_at=now, expected_return=now,
        ladder=compressed(policy.escalation, factor), watch=Watch(anchor=now), drill=True,
    )


def labelled(message: Message) -> Message:
    """The message with the DRILL label first (once)."""
    return message if message.text.startswith(LABEL) else replace(message, text=f"{LABEL}\n{message.text}")


def relabel(text: str) -> str:
    """A text that quotes a drill message (e.g. a fallback copy) with the DRILL label moved to the front."""
    if LABEL not in text or text.startswith(LABEL):
        return text
    return f"{LABEL}\n" + text.replace(f"{LABEL}\n", "", 1)


def dressed(message: Message, message_id: int) -> Message:
    """A drill message: labelled DRILL, answered with its own button (never the real alert's buttons)."""
    return replace(labelled(message), buttons=(Button(ACK_LABEL, actions.DRILL_ACK, str(message_id), "primary"),))


def finished(visit: Visit, now: datetime, wait: timedelta) -> bool:
    """Every tier has gone out and the wait for answers after the last one is over."""
    w = visit.watch
    return w.tier_sent >= len(visit.ladder) and w.last_alarm_at is not None and w.last_alarm_at + wait <= now


def ended(visit: Visit, now: datetime) -> Visit:
    """The drill visit, over."""
    if visit.state is State.returned:
        return visit
    return replace(visit, state=State.returned, returned_at=now, watch=replace(visit.watch, next_checkin_at=None, checkin_deadline=None))


@dataclass(frozen=True)
class Run:
    """One drill: who started it, when, how fast, and how it ended."""

    visit_id: int
    started_by: str
    started_at: datetime
    factor: int
    wait: timedelta
    ended_at: datetime | None = None
    stopped_by: str | None = None


@dataclass(frozen=True)
class Sent:
    """One message a drill tier queued, and what became of it (the outbox's status, Slack's or Chat's last error)."""

    id: int
    tier: int
    target: str
    queued_at: datetime
    status: str
    sent_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class Answer:
    """Someone pressed the drill button on one message."""

    message_id: int
    user: str
    at: datetime


def seconds(delta: timedelta) -> str:
    """A short time as a person reads it: `7 s`, `1 min 5 s`."""
    total = max(0, round(delta.total_seconds()))
    minutes, secs = divmod(total, 60)
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def at_real_speed(delta: timedelta, factor: int) -> str:
    """What a drill's time would have been on the real ladder."""
    real = delta * factor
    return "under a minute" if real < timedelta(minutes=1) else format_duration(timedelta(seconds=round(real.total_seconds() / 60) * 60))


def channel_of(target: str, policy: Policy) -> str:
    """The channel a message went by, as the report names it."""
    kind = target.partition(":")[0]
    if kind in ("sms", "email") and ":" in target:
        return "SMS" if kind == "sms" else "email"
    if policy.platform == "google_chat":
        return "Google Chat DM" if is_person(target) else "Google Chat space"
    return "Slack DM" if is_person(target) else "Slack channel"


def who(target: str) -> str:
    """A destination as the report names it."""
    kind, colon, rest = target.partition(":")
    return rest if colon and kind in ("sms", "email") else where(target)


def is_text(target: str) -> bool:
    """Whether a drill message went by SMS or email (through GOV.UK Notify)."""
    return target.startswith(("sms:", "email:"))


def _person(target: str, policy: Policy) -> str:
    """A text's recipient as the report names them: the staff directory's name (never their number or address)."""
    user = who(target)
    entry = policy.staff.get(user)
    return entry.name if entry is not None and entry.name else mention(user)


def _text_fix(sent: Sent, policy: Policy) -> str | None:
    """What to fix about one SMS or email of a drill, if anything."""
    error, person = _notify_error(sent), _person(sent.target, policy)
    detail = "mobile" if sent.target.startswith("sms:") else "email address"
    if sent.status in ("sent", "standby"):
        return None
    if any(code in error for code in ("invalid_recipient", "no mobile", "no email", "not a number")):
        return f"Notify could not {channel_of(sent.target, policy)} {person} ({error}): check {person}'s {detail} in the staff directory."
    if "key_refused" in error or "team_only_key" in error:
        return f"Notify refused VisitSafe's key ({error}): check NOTIFY_API_KEY is the service's live key."
    if error:
        return f"The {channel_of(sent.target, policy)} to {person} failed ({error}) and was not accepted by Notify by the end of the drill."
    return f"The {channel_of(sent.target, policy)} to {person} was still waiting for Notify when the drill ended."


def _notify_error(sent: Sent) -> str:
    """Notify's last answer about a text ('' if it has not answered: an armed standby text not yet tried)."""
    error = sent.error or ""
    return "" if error.startswith("armed:") else error


def _text_line(sent: Sent, policy: Policy) -> str:
    """One SMS or email of a drill as the report lists it: whether Notify accepted it (no answer expected by text)."""
    how = f"{_person(sent.target, policy)} by {channel_of(sent.target, policy)}"
    if sent.status == "sent" and sent.sent_at:
        return f"{how}: accepted by Notify {seconds(sent.sent_at - sent.queued_at)} after the tier went out"
    if sent.status == "standby":
        return f"{how}: on standby, not sent (the tier's chat was delivered, and answered or not yet due, in time)"
    error = _notify_error(sent)
    return f"{how}: NOT accepted by Notify" + (f" ({error})" if error else " (still waiting to be sent)")


def _fix(sent: Sent, policy: Policy) -> str | None:
    """What to fix about one message, if anything."""
    error = sent.error or ""
    if is_text(sent.target):
        return _text_fix(sent, policy)
    if sent.status == "sent":
        return None
    if "no_direct_message" in error:
        return f"{who(sent.target)} has not added VisitSafe in Google Chat, so no alert can reach them there: ask them to open Google Chat, find VisitSafe and start a chat with it (`visitsafe doctor` lists everyone)."
    if any(code in error for code in ("not_in_channel", "channel_not_found", "http_403", "http_404")):
        return f"VisitSafe cannot post in {who(sent.target)} ({error}): add the app to it, or correct its id in the policy."
    if any(code in error for code in ("user_not_found", "account_inactive", "cannot_dm_bot", "user_disabled")):
        return f"{who(sent.target)} cannot be messaged ({error}): correct their id in the policy, or remove them."
    if error:
        return f"The message to {who(sent.target)} by {channel_of(sent.target, policy)} failed ({error}) and was not delivered by the end of the drill."
    return f"The message to {who(sent.target)} by {channel_of(sent.target, policy)} was still waiting when the drill ended."


def _first_text_per_person(sent: list[Sent]) -> list[Sent]:
    """Every chat message, and of the texts to one person only the first that went wrong (later ones wait behind it)."""
    seen: set[str] = set()
    kept = []
    for s in sent:
        if is_text(s.target) and s.status not in ("sent", "standby"):
            if s.target in seen:
                continue
            seen.add(s.target)
        kept.append(s)
    return kept


def report(run: Run, visit: Visit, sent: list[Sent], answers: list[Answer], policy: Policy) -> str:
    """The drill report for the DSL: per tier, who was reached on which channel and how fast they answered; who never answered; what to fix."""
    assert run.ended_at is not None
    how = f"stopped by {mention(run.stopped_by)}" if run.stopped_by else "every tier done"
    lines = [
        f"*DRILL REPORT*: ladder drill #{visit.id}, started by {mention(run.started_by)} at {clock(run.started_at, policy)},"
        f" {run.factor} times faster than real (a minute of the ladder took {seconds(timedelta(minutes=1) / run.factor)});"
        f" ended at {clock(run.ended_at, policy)} ({how})."
    ]
    first_answer: dict[int, Answer] = {}
    for answer in sorted(answers, key=lambda a: a.at):
        first_answer.setdefault(answer.message_id, answer)
    silent: dict[str, list[int]] = {}
    for index, tier in enumerate(visit.ladder):
        mine = [s for s in sent if s.tier == index]
        real = format_duration(tier.after * run.factor)
        if not mine:
            lines.append(f"*Tier {index + 1}* ({', '.join(tier.notify)}, {real} on the real ladder): not reached before the drill ended.")
            continue
        went = min(s.queued_at for s in mine)
        lines.append(f"*Tier {index + 1}* ({', '.join(tier.notify)}, {real} on the real ladder) went out at +{seconds(went - run.started_at)}:")
        for s in mine:
            if is_text(s.target):
                # A text is answered by the chat button: its person is never "silent" for it.
                lines.append(f"  • {_text_line(s, policy)}")
                continue
            delivered = f"delivered after {seconds(s.sent_at - s.queued_at)}" if s.status == "sent" and s.sent_at else "NOT delivered"
            answer = first_answer.get(s.id)
            if answer is None:
                silent.setdefault(who(s.target), []).append(index + 1)
                answered = "no answer"
            else:
                by = "" if answer.user == s.target else f" by {mention(answer.user)}"
                answered = f"answered{by} after {seconds(answer.at - s.queued_at)} ({at_real_speed(answer.at - s.queued_at, run.factor)} at real speed)"
            lines.append(f"  • {who(s.target)} by {channel_of(s.target, policy)}: {delivered}; {answered}")
        answered_at = [first_answer[s.id].at for s in mine if s.id in first_answer]
        if answered_at:
            fastest = min(answered_at) - went
            lines.append(f"  First answered after {seconds(fastest)} ({at_real_speed(fastest, run.factor)} at real speed).")
        else:
            lines.append("  Nobody answered this tier.")
    if silent:
        lines.append("*Never answered:* " + "; ".join(f"{name} (tier {', '.join(map(str, tiers))})" for name, tiers in silent.items()) + ".")
    else:
        lines.append("*Never answered:* nobody; everyone reached answered.")
    fixes = list(dict.fromkeys(f for s in _first_text_per_person(sent) if (f := _fix(s, policy))))
    if fixes:
        lines.append("*To fix:*")
        lines += [f"  • {fix}" for fix in fixes]
    else:
        lines.append("*To fix:* nothing; every message was delivered.")
    return "\n".join(lines)
