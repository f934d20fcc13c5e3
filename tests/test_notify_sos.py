"""SMS for the most urgent alerts (issue 15, the gaps left by items 1 and 4): an SOS, a duress alarm and the repeats
after the last tier go by SMS when chat fails or nobody acknowledges; sms_after fires on time through the wake-up;
chat alerts already delivered say an SMS went; the people texted hear when it is over; an email tier end to end."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from bot.simnotify import SimNotify
from commands import safety
from tests.conftest import (
    COMPANION, DEPUTY, DSL, HEAD, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, make_policy, Workspace,
)
from tests.test_e2e_safety import ADDRESS, alerts_in, at, out_and_checked_in, out_at_ten
from tests.test_notify import NUMBERS, PUPIL_REF, STAFF, step_until
from tests.test_wakeup import Sleep

NOTE = "man shouting at the door"


@pytest.fixture
def notify():
    sim = SimNotify()
    sim.sms_template = sim.add_template("sms", "((message))")
    sim.email_template = sim.add_template("email", "((message))", subject="((subject))")
    with sim:
        yield sim


@pytest.fixture
def make(tmp_path, clock, notify, monkeypatch):
    made: list[Workspace] = []

    def build(**changes) -> Workspace:
        monkeypatch.setenv("NOTIFY_API_KEY", notify.api_key())
        monkeypatch.setenv("NOTIFY_BASE_URL", notify.base_url)
        notify.clock = lambda: clock().timestamp()
        templates = {"sms_template": notify.sms_template, "email_template": notify.email_template}
        ws = Workspace(tmp_path, make_policy(**{"notify": templates, "staff": STAFF, **changes}), clock)
        made.append(ws)
        return ws

    yield build
    for ws in made:
        ws.close()


def texted(notify) -> Counter:
    """How many SMS each number received."""
    return Counter(s.to for s in notify.sent if s.kind == "sms")


def private(body: str) -> None:
    """Nothing an SMS may not carry: the address, the pupil reference, the visit's contact number, the SOS note."""
    for secret in (ADDRESS, PUPIL_REF, "01632 960123", NOTE):
        assert secret not in body, (secret, body)


def sos_at(ws, hour, minute, note=NOTE):
    ws.clock.set(ws.clock().replace(hour=hour, minute=minute, second=0))
    answer = ws.driver.command(REQUESTER, "/sos", note)
    assert "Call 999" in answer.text, answer.text
    return ws.clock()


def test_sos_with_slack_down_texts_each_responder_within_the_fallback_time_once(make, notify):
    ws = make()
    out_at_ten(ws)
    ws.sim.down()  # every Web API call 503 from here on
    raised = sos_at(ws, 10, 10)
    step_until(ws, lambda: len(texted(notify)) == 3, 90)
    first = min(s.at for s in notify.sent) - raised.timestamp()
    assert first <= ws.runtime.policy.delivery_fallback_after.total_seconds() + 2, first
    print(f"[SOS, Slack 503] first SMS {first:.1f} s after the SOS")
    # The SOS's audiences as people: the DSLs (safeguarding, their DMs) and the office; never the visiting team.
    assert texted(notify) == Counter({NUMBERS[DSL]: 1, NUMBERS[DEPUTY]: 1, NUMBERS[OFFICE]: 1})
    [sms] = notify.sms_to(NUMBERS[DSL])
    assert sms.body.startswith("VisitSafe Example Primary: SOS. Sam Visitor raised an SOS at 10:10 on home visit #1.")
    assert "07700 900010" in sms.body and "999" in sms.body
    private(sms.body)
    for _ in range(20):  # more ticks, Slack still down: nobody texted twice
        ws.clock.advance(timedelta(seconds=3))
        ws.runtime.tick()
    assert set(texted(notify).values()) == {1}


def test_sos_refused_outright_in_the_delivery_thread_goes_by_sms_within_a_second(make, notify):
    ws = make()
    out_at_ten(ws)
    ws.sim.refuse_token()  # the token revoked: every call refused
    wake = ws.runtime.wakeup
    wake.wait = Sleep(ws.clock)
    ws.clock.set(ws.clock().replace(hour=10, minute=9, second=55))
    ws.runtime.tick()  # the last periodic tick before the SOS
    raised = sos_at(ws, 10, 10)  # refused as the command's delivery sends it
    assert notify.sent == []
    # The refusal pokes the wake-up, which ticks at once rather than at the next periodic sweep (15 s).
    assert wake.replan() <= raised + timedelta(seconds=1)
    assert wake.run_once() is True
    assert texted(notify) == Counter({NUMBERS[DSL]: 1, NUMBERS[DEPUTY]: 1, NUMBERS[OFFICE]: 1})
    assert max(s.at for s in notify.sent) - raised.timestamp() <= 1.0
    print(f"[SOS, token refused] every SMS within {max(s.at for s in notify.sent) - raised.timestamp():.1f} s of the SOS")


def test_duress_unacknowledged_goes_by_sms_to_the_dsls_only_saying_it_is_silent(make, notify):
    ws = make(sms_after="5m")
    safety.set_duress_word(ws.runtime.ctx, REQUESTER, "bluebell")
    out_at_ten(ws)
    ws.clock.set(ws.clock().replace(hour=10, minute=20))
    seen_before = [m.plain() for m in ws.dms(REQUESTER)]
    assert "Welcome back" in ws.driver.command(REQUESTER, "/back", "bluebell").text
    at(ws, 10, 24)
    assert notify.sent == []  # delivered by chat, not yet sms_after
    at(ws, 10, 25)
    # The silent alarm's audience (safeguarding, the DSLs): not the office, never the visitor or companion.
    assert texted(notify) == Counter({NUMBERS[DSL]: 1, NUMBERS[DEPUTY]: 1})
    [sms] = notify.sms_to(NUMBERS[DSL])
    assert "SILENT ALARM" in sms.body and "duress word at 10:20" in sms.body and "do not message them" in sms.body
    private(sms.body)
    at(ws, 10, 29)
    assert len(notify.sent) == 2
    # The visitor's own messages say nothing of it.
    after = [m.plain() for m in ws.dms(REQUESTER)]
    assert not any("SMS" in text or "ALARM" in text for text in after), after[len(seen_before):]


def test_an_acknowledged_sos_is_not_texted(make, notify):
    ws = make(sms_after="5m")
    out_at_ten(ws)
    sos_at(ws, 10, 10)
    [sg] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    at(ws, 10, 12)
    ws.driver.click(DSL, sg, "I'm handling this")
    at(ws, 10, 20)
    assert notify.sent == []


def test_repeats_after_the_last_tier_go_by_sms_when_nobody_acknowledges(make, notify):
    ladder = [{"after": "0m", "notify": ["visitor"]}, {"after": "15m", "notify": ["safeguarding", "dsl"]}]
    ws = make(escalation=ladder, sms_after="5m", repeat_interval="15m")
    out_and_checked_in(ws)
    at(ws, 11, 0)  # the last tier
    at(ws, 11, 5)
    assert texted(notify) == Counter({NUMBERS[DSL]: 1, NUMBERS[DEPUTY]: 1})
    at(ws, 11, 15)  # reminder 1, to every DSL and the head
    at(ws, 11, 20)
    assert texted(notify) == Counter({NUMBERS[DSL]: 2, NUMBERS[DEPUTY]: 2, NUMBERS[HEAD]: 1})
    [reminder] = notify.sms_to(NUMBERS[HEAD])
    assert "STILL NOT CONFIRMED SAFE" in reminder.body and "reminder 1" in reminder.body
    private(reminder.body)
    at(ws, 11, 25)
    assert sum(texted(notify).values()) == 5


def test_sms_after_fires_through_the_wake_up_at_its_moment(make, notify):
    ws = make(sms_after="5m")
    out_and_checked_in(ws)
    at(ws, 11, 0)  # the office tier, delivered by chat
    assert notify.sent == []
    wake = ws.runtime.wakeup
    wake.wait = sleep = Sleep(ws.clock)
    assert wake.replan().strftime("%H:%M:%S") == "11:05:00"  # not the next tier at 11:15
    assert wake.run_once() is True
    assert ws.clock().strftime("%H:%M:%S") == "11:05:00"
    [sms] = notify.sms_to(NUMBERS[OFFICE])
    assert sms.at == ws.clock().timestamp()


def test_a_chat_alert_delivered_before_the_sms_is_updated_once_to_say_so(make, notify):
    ws = make(sms_after="5m")
    out_and_checked_in(ws)
    at(ws, 11, 0)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    assert "Already sent by SMS" not in office.plain()
    at(ws, 11, 5)
    [office] = alerts_in(ws, OFFICE_CHANNEL)
    assert office.plain().count(f"Already sent by SMS to <@{OFFICE}> at 11:05.") == 1, office.plain()
    assert "OVERDUE" in office.plain() and "[I'm handling this]" in office.plain()  # the alert itself, still actionable
    updates = [c for c in ws.sim.calls_to("chat.update") if "Already sent by SMS" in c.params.get("text", "") + str(c.params.get("blocks"))]
    at(ws, 11, 7)
    later = [c for c in ws.sim.calls_to("chat.update") if "Already sent by SMS" in c.params.get("text", "") + str(c.params.get("blocks"))]
    assert len(updates) == len(later) == 1
    # The visitor's own messages are never told.
    assert not any("SMS" in m.plain() for m in ws.dms(REQUESTER))


def test_confirmed_safe_tells_each_person_texted_once_without_the_note(make, notify):
    ws = make(sms_after="5m")
    out_and_checked_in(ws)
    at(ws, 11, 0)
    at(ws, 11, 5)  # the office is texted
    at(ws, 11, 15)
    at(ws, 11, 20)  # the DSLs are texted
    assert texted(notify) == Counter({NUMBERS[OFFICE]: 1, NUMBERS[DSL]: 1, NUMBERS[DEPUTY]: 1})
    ws.clock.set(ws.clock().replace(hour=11, minute=22))
    [sg] = alerts_in(ws, SAFEGUARDING_CHANNEL)
    ws.driver.click(DSL, sg, "Reached, safe")
    ws.driver.submit(DSL, {"note": "Spoke to Sam, flat tyre at 12 Example Road"})
    ws.runtime.tick()
    at(ws, 11, 30)
    assert texted(notify) == Counter({NUMBERS[OFFICE]: 2, NUMBERS[DSL]: 2, NUMBERS[DEPUTY]: 2})
    for number in (NUMBERS[OFFICE], NUMBERS[DSL], NUMBERS[DEPUTY]):
        over = notify.sms_to(number)[-1].body
        assert over == "VisitSafe: Sam Visitor and Chris Companion are confirmed safe at 11:22. No action needed.", over
    assert not notify.sms_to(NUMBERS[HEAD])  # never texted, so not told either


def test_an_email_tier_reaches_the_head_through_notify_without_the_child(make, notify):
    ladder = [{"after": "0m", "notify": ["visitor"]}, {"after": "15m", "notify": ["office", "email:head"]}, {"after": "1h", "notify": ["dsl"]}]
    staff = {**STAFF, HEAD: {**STAFF[HEAD], "email": "pat.head@example-primary.sch.uk"}}
    ws = make(escalation=ladder, staff=staff)
    out_and_checked_in(ws)
    at(ws, 10, 59)
    assert notify.sent == []
    at(ws, 11, 0)
    [email] = [s for s in notify.sent if s.kind == "email"]
    assert email.to == "pat.head@example-primary.sch.uk" and email.template_id == notify.email_template
    assert email.subject.startswith("VisitSafe Example Primary: OVERDUE") and "#1" in email.body
    assert "Sam Visitor and Chris Companion were due back at 10:45" in email.body
    private(email.body)
    private(email.subject)
    at(ws, 11, 5)
    assert len([s for s in notify.sent if s.kind == "email"]) == 1
    # The chat alert still waiting nowhere: delivered, and the email counts as sent in the outbox.
    assert ws.runtime.health()[1]["outbox"]["queued"] == 0
    assert COMPANION not in {s.to for s in notify.sent}
