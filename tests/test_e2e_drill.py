"""End to end: ladder drills through the real app over HTTP, the sweep and a simulated Slack, on an injected clock."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import (
    COMPANION, DEPUTY, DSL, HEAD, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL,
)
from tests.platforms import PLATFORMS, make_site
from tests.test_e2e_safety import alerts_in, at, out_and_checked_in

SEEN = "Seen (drill)"
LABEL = "DRILL: a test of the alert ladder, nobody is in danger."


def later(ws, seconds):
    """Move the clock on by `seconds` and run one sweep."""
    ws.clock.set(ws.clock() + timedelta(seconds=seconds))
    ws.runtime.tick()


def plain(message):
    """A message as a person reads it, without the bold markup."""
    return message.plain().replace("*", "")


def drill_messages(ws, place):
    return [m for m in ws.sim.messages(place) if LABEL in plain(m)]


def seen(ws, user, place):
    """`user` presses the drill button on the newest drill message in `place`; the answer they see."""
    message = [m for m in drill_messages(ws, place) if f"[{SEEN}]" in plain(m)][-1]
    ws.driver.click(user, message, SEEN)
    return ws.sim.ephemerals(user)[-1].text.replace("*", "")


def test_a_drill_runs_every_tier_labelled_and_reports_who_answered_how_fast(workspace):
    ws = workspace
    answer = ws.driver.command(DSL, "/visitsafe", "drill 60")
    assert "DRILL #1 started" in answer.text.replace("*", "") and "60 times faster" in answer.text, answer.text
    start = ws.clock()

    ws.runtime.tick()  # +0 s: tier 1, the visitor: here the DSL running the drill
    [prompt] = drill_messages(ws, DSL)
    assert plain(prompt).startswith(LABEL) and "Visit #1: you were due back" in plain(prompt)
    # The drill's only button: never Back / Need help, which would act on a real visit.
    assert f"[{SEEN}]" in plain(prompt) and "Need help" not in plain(prompt) and "I'm back" not in plain(prompt)
    later(ws, 5)
    assert "You answered 5 s after tier 1 went out (5m at real speed)" in seen(ws, DSL, DSL)

    later(ws, 10)  # +15 s: tier 2, the office
    [office] = drill_messages(ws, OFFICE_CHANNEL)
    assert "OVERDUE" in plain(office) and "I'm handling this" not in plain(office)
    later(ws, 7)
    seen(ws, OFFICE, OFFICE_CHANNEL)
    assert "you already answered this one, after 7 s" in seen(ws, OFFICE, OFFICE_CHANNEL)

    later(ws, 8)  # +30 s: tier 3, safeguarding and every DSL (the running DSL too)
    assert len(drill_messages(ws, SAFEGUARDING_CHANNEL)) == 1 and len(drill_messages(ws, DEPUTY)) == 1
    later(ws, 3)
    seen(ws, DSL, DSL)

    later(ws, 27)  # +60 s: tier 4, the head and the DSLs
    later(ws, 10)
    seen(ws, HEAD, HEAD)
    # Someone who is not a responder cannot answer for a channel.
    [last_office] = drill_messages(ws, OFFICE_CHANNEL)
    ws.driver.click(REQUESTER, last_office, SEEN, channel=OFFICE_CHANNEL)
    assert "was not for you" in ws.sim.ephemerals(REQUESTER)[-1].text

    later(ws, 49)  # +119 s: still waiting for answers (a minute after the last tier)
    assert not [m for m in ws.dms(DSL) if "DRILL REPORT" in plain(m)]
    later(ws, 1)  # +120 s: the drill ends and the DSL gets the report
    [report] = [m for m in ws.dms(DSL) if "DRILL REPORT" in plain(m)]
    text = plain(report)
    assert "ladder drill #1, started by <@U01> at 09:00, 60 times faster than real" in text
    assert "ended at 09:02 (every tier done)" in text
    expected = [
        "Tier 1 (visitor, 0m on the real ladder) went out at +0 s:",
        "  • <@U01> by Slack DM: delivered after 0 s; answered after 5 s (5m at real speed)",
        "  First answered after 5 s (5m at real speed).",
        "Tier 2 (office, 15m on the real ladder) went out at +15 s:",
        "  • <#C0OFFICE> by Slack channel: delivered after 0 s; answered by <@U03> after 7 s (7m at real speed)",
        "  First answered after 7 s (7m at real speed).",
        "Tier 3 (safeguarding, dsl, 30m on the real ladder) went out at +30 s:",
        "  • <#C0SAFE> by Slack channel: delivered after 0 s; no answer",
        "  • <@U01> by Slack DM: delivered after 0 s; answered after 3 s (3m at real speed)",
        "  • <@U09> by Slack DM: delivered after 0 s; no answer",
        "  First answered after 3 s (3m at real speed).",
        "Tier 4 (head, dsl, 1h on the real ladder) went out at +1 min:",
        "  • <@U02> by Slack DM: delivered after 0 s; answered after 10 s (10m at real speed)",
        "  • <@U01> by Slack DM: delivered after 0 s; no answer",
        "  • <@U09> by Slack DM: delivered after 0 s; no answer",
        "  First answered after 10 s (10m at real speed).",
        "Never answered: <#C0SAFE> (tier 3); <@U09> (tier 3, 4); <@U01> (tier 4).",
        "To fix: nothing; every message was delivered.",
    ]
    for line in expected:
        assert line in text, f"{line!r} not in\n{text}"
    # Every drill message now says the drill is over, without a button; a late answer does not count.
    for place in (DSL, DEPUTY, HEAD, OFFICE_CHANNEL, SAFEGUARDING_CHANNEL):
        for message in drill_messages(ws, place):
            assert "Drill #1 is over" in plain(message) and "[" not in plain(message)
    # Nothing of the drill reached the visiting staff, and the office board never showed it.
    assert ws.dms(REQUESTER) == [] and ws.dms(COMPANION) == []
    assert "#1" not in ws.driver.command(OFFICE, "/visits").text
    assert ws.clock() - start == timedelta(seconds=120)


def test_a_real_overdue_visit_beside_a_drill_gets_its_real_unlabelled_alerts_on_time_once(workspace):
    ws = workspace
    out_and_checked_in(ws)  # visit #1, due back 10:45: office 11:00, safeguarding and DSLs 11:15, head 11:45
    at(ws, 10, 45)
    at(ws, 10, 59)
    answer = ws.driver.command(DSL, "/visitsafe", "drill 60")
    assert "DRILL #2 started" in answer.text.replace("*", "")
    # Sweep every 15 s through both ladders: the drill's tiers (10:59:00 to 11:00:00) and the real 11:00 tier overlap.
    for _ in range(4 * 50):
        later(ws, 15)
        # The board shows the real visit overdue, never the drill.
        if ws.clock().minute in (0, 30) and ws.clock().second == 0:
            board = ws.driver.command(OFFICE, "/visits").text
            assert "#2" not in board and "DRILL" not in board
    assert ws.clock().strftime("%H:%M") == "11:49"
    real = {place: alerts_in(ws, place) for place in (OFFICE_CHANNEL, SAFEGUARDING_CHANNEL, DSL, DEPUTY, HEAD)}
    # Each real tier once, unlabelled, with the real alert's buttons.
    assert [len(real[p]) for p in (OFFICE_CHANNEL, SAFEGUARDING_CHANNEL, DSL, DEPUTY, HEAD)] == [1, 1, 2, 2, 1]
    for place, messages in real.items():
        for message in messages:
            assert "DRILL" not in message.plain() and "[I'm handling this]" in message.plain(), (place, message.plain())
    # On time: the audit trail of visit #1 has each tier at its own minute.
    trail = [(e["at"].strftime("%H:%M:%S"), e.get("tier")) for e in ws.runtime.store.read().audit_trail(1) if e["action"] == "tier_sent"]
    assert trail == [("10:45:00", 0), ("11:00:00", 1), ("11:15:00", 2), ("11:45:00", 3)]
    # And the drill went its own way: labelled, about visit #2 only, then its report.
    for place in (OFFICE_CHANNEL, SAFEGUARDING_CHANNEL, DSL, DEPUTY, HEAD):
        assert all("#2" in plain(m) and "#1" not in plain(m) for m in drill_messages(ws, place))
    [report] = [m for m in ws.dms(DSL) if "DRILL REPORT" in plain(m)]
    assert "ladder drill #2" in plain(report) and "every tier done" in plain(report)
    # The visitor's real prompt came to them, unlabelled; nothing of the drill did.
    assert all("DRILL" not in m.plain() for m in ws.dms(REQUESTER))


def test_only_a_dsl_or_the_head_runs_a_drill_with_a_checked_speed_up_and_can_stop_it(workspace):
    ws = workspace
    for user in (REQUESTER, OFFICE):
        assert "Only a DSL or the head can run a ladder drill." in ws.driver.command(user, "/visitsafe", "drill").text
    refusals = {
        "drill fast": "'fast' is not a speed-up: give a whole number of times faster, from 1 (real time) to 60",
        "drill 0": "The speed-up must be at least 1 (1 runs the ladder at real speed), and at most 60.",
        "drill 61": "61 times faster is too fast: tiers 15m apart would come 14s apart, closer than the sweep's 15s",
        "drill stop": "No drill is running. Start one with `/visitsafe drill`.",
    }
    for text, said in refusals.items():
        assert said in ws.driver.command(HEAD, "/visitsafe", text).text, text
    assert "DRILL* #1 started: the real ladder, 60 times faster" in ws.driver.command(HEAD, "/visitsafe", "drill").text
    assert "Drill #1 is already running (started by <@U02> at 09:00)" in ws.driver.command(DSL, "/visitsafe", "drill 30").text
    # A DSL's real /sos during the drill is a real SOS: the drill is nobody's visit.
    ws.driver.command(DSL, "/sos", "")
    ws.runtime.tick()
    [sos] = [m for m in ws.channel(SAFEGUARDING_CHANNEL) if "SOS" in m.plain()]
    assert "DRILL" not in sos.plain() and "not on a recorded visit" in sos.plain()
    later(ws, 20)  # tiers 1 and 2 have gone out
    # A forged real-alert button carrying the drill's id changes nothing.
    for action in ("alert_ack", "alert_no_answer"):
        ws.driver.action(OFFICE, action, "1", channel=OFFICE_CHANNEL)
        assert "This is a drill, not a real alert" in ws.sim.ephemerals(OFFICE)[-1].text
    assert "DRILL* #1 stopped" in ws.driver.command(DSL, "/visitsafe", "drill stop").text
    ws.runtime.tick()
    for user in (HEAD, DSL):  # who started it, and who stopped it
        [report] = [m for m in ws.dms(user) if "DRILL REPORT" in plain(m)]
        text = plain(report)
        assert "(stopped by <@U01>)" in text and "Tier 3 (safeguarding, dsl, 30m on the real ladder): not reached before the drill ended." in text
    later(ws, 120)
    assert not [m for m in ws.channel(SAFEGUARDING_CHANNEL) if "Tier 3" in plain(m) or LABEL in plain(m)]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_drill_on_either_platform_reports_who_could_not_be_reached_and_the_fix(platform, tmp_path, clock):
    site = make_site(platform, tmp_path, clock)
    try:
        deputy = site.id("deputy")
        if platform == "slack":
            site.sim.refuse_dm(deputy, "user_not_found")
            fix = "@Dee Deputy cannot be messaged (user_not_found): correct their id in the policy, or remove them."
        else:
            site.sim.no_dm_for(deputy)
            fix = "@Dee Deputy has not added VisitSafe in Google Chat, so no alert can reach them there"
        answer = site.command("dsl", "/visitsafe", "drill 60")
        assert "DRILL #1 started" in answer.text, answer.text
        site.tick()
        for seconds, who, where in ((5, "dsl", "dsl"), (15, None, None), (7, "office", "#office"), (8, None, None), (30, None, None)):
            clock.set(clock() + timedelta(seconds=seconds))
            site.tick()
            if who:
                message = [m for m in site.messages(where) if SEEN in str(m.raw)][-1]
                assert LABEL in message.text.replace("*", ""), message.text
                assert "You answered" in site.click(who, message, SEEN).text
        clock.set(clock() + timedelta(seconds=60))
        site.tick()
        site.tick()
        [report] = [m for m in site.messages("dsl") if "DRILL REPORT" in m.text]
        text = report.text
        chat = "Google Chat" if platform == "google_chat" else "Slack"
        place = "space" if platform == "google_chat" else "channel"
        assert f"by {chat} {place}: delivered after 0 s; answered by @Alex Office after 7 s (7m at real speed)" in text, text
        assert f"@Jo Reid by {chat} DM: delivered after 0 s; answered after 5 s (5m at real speed)" in text
        assert f"@Dee Deputy by {chat} DM: NOT delivered; no answer" in text
        assert fix in text, text
    finally:
        site.close()
