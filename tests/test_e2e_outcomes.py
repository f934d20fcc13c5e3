"""After the visit, end to end on Slack and on Google Chat: the outcome buttons and forms, who hears of each
report, the card sequence and the referral, the one-hour outcome reminder, recording on CPOMS with its
reminder and the DSL told at the deadline (the sweep on an injected clock), and the refusals."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.runtime import Runtime
from flows import actions
from tests.conftest import risk_form, visit_form
from tests.platforms import Site
from tests.test_both_platforms import site  # noqa: F401 - the fixture: the test school on each platform

OUTCOME_BUTTONS = "[No concerns] [Nobody home] [Safeguarding concern] [Incident] [Left: felt unsafe] [Allegation made]"


def request_visit(site: Site, start: str = "10:00", pupil: str = "AB123") -> None:
    assert site.command("requester", "/visit").status == 200
    first = site.submit_form("requester", visit_form(start_time=start, pupil_ref=pupil))
    assert first.status == 200 and not first.text, first.text
    second = site.submit_form("requester", risk_form(companions=[site.id("companion")]))
    assert second.status == 200 and not second.text, second.text


def approve_latest(site: Site, approver: str) -> None:
    waiting = [m for m in site.messages(approver) if "[Approve]" in m.text]
    site.click(approver, waiting[-1], "Approve")


def visit_and_out(site: Site, number: int, start=(10, 0), pupil: str = "AB123") -> None:
    """Request visit `number` at `start`, both approvals, then /out at `start`."""
    site.clock.set(site.clock().replace(hour=start[0] - 1, minute=0))
    request_visit(site, f"{start[0]:02d}:{start[1]:02d}", pupil)
    for approver in ("dsl", "head"):
        approve_latest(site, approver)
    site.at(*start)
    out = site.command("requester", "/out", "45m")
    assert f"You are out on visit #{number}" in out.text, out.text


def visit_and_back(site: Site, number: int, start=(10, 0), back=(10, 40), pupil: str = "AB123") -> None:
    """Visit `number` out at `start`, then /back at `back`."""
    visit_and_out(site, number, start, pupil)
    site.at(*back)
    assert "Welcome back" in site.command("requester", "/back").text


def prompt(site: Site, visit: int = 1):
    """The outcome question in the visitor's DMs (as it reads now: answered, it shows the answer)."""
    [asked] = [m for m in site.messages("requester") if f"How did visit #{visit} " in m.text or f"Visit #{visit} (AB123, Mon 23 Nov): outcome" in m.text
               or f"Visit #{visit} (ab 123, Mon 23 Nov): outcome" in m.text]
    return asked


def in_dms(site: Site, who: str, words: str) -> list:
    return [m for m in site.messages(who) if words in m.text]


def form_shown(site: Site, who: str) -> str:
    """Everything the open form shows (its intro, labels and preselected answers), as JSON text."""
    user = site.id(who)
    return json.dumps(site.driver.view(user) if site.platform == "slack" else site.dialogs[user])


def test_no_concerns_is_recorded_once_then_the_cpoms_prompt_and_recorded(site):
    visit_and_back(site, 1)
    asked = prompt(site)
    assert OUTCOME_BUTTONS in asked.text
    answer = site.click("requester", asked, "No concerns")
    assert "recorded as No concerns" in answer.text
    # The question now shows the answer, and its buttons are gone.
    assert "outcome No concerns, given by @Sam Visitor at 10:40" in prompt(site).text and "[" not in prompt(site).text
    [record] = in_dms(site, "requester", "on CPOMS by")
    assert "Record visit #1 (AB123, Mon 23 Nov) on CPOMS by Tue 24 Nov 10:40" in record.text and "[Recorded]" in record.text

    again = site.tampered_click("requester", actions.OUTCOME_NO_CONCERNS, "1")
    assert "Visit #1 already has an outcome: No concerns, given by @Sam Visitor at 10:40. Nothing was changed." in again.text
    stranger = site.tampered_click("dsl", actions.OUTCOME_INCIDENT, "1")
    assert "Only the visitor or a companion on visit #1 can give its outcome" in stranger.text

    assert "marked recorded on CPOMS" in site.click("requester", record, "Recorded").text
    assert "recorded on CPOMS by @Sam Visitor at 10:40" in in_dms(site, "requester", "CPOMS")[0].text
    assert "already marked recorded" in site.tampered_click("requester", actions.RECORDED, "1").text
    # Recorded: no reminder at half the deadline, no DSL told at the deadline.
    site.at(22, 40)
    site.clock.set(site.clock() + timedelta(hours=12, minutes=5))
    site.tick()
    assert not in_dms(site, "requester", "Reminder") and not in_dms(site, "dsl", "CPOMS")


def test_no_outcome_before_back_and_none_from_someone_not_on_the_visit(site):
    visit_and_out(site, 1)
    early = site.tampered_click("requester", actions.OUTCOME_NOBODY_HOME, "1")
    assert "Visit #1 is not over yet: give its outcome after /back." in early.text
    site.at(10, 40)
    site.command("requester", "/back")
    for who in ("dsl", "office", "head"):
        refused = site.tampered_click(who, actions.OUTCOME_ALLEGATION, "1")
        assert "Only the visitor or a companion on visit #1 can give its outcome: nothing was recorded." in refused.text
    assert "not one of mine" in site.tampered_click("requester", actions.OUTCOME_NO_CONCERNS, "01").text
    assert site.store.read().outcome_of(1) is None


def test_nobody_home_follows_the_card_sequence_and_the_second_no_answer_is_referred(site):
    visit_and_back(site, 1)
    site.click("requester", prompt(site, 1), "Nobody home")
    assert site.form_title("requester") == "Nobody home"
    shown = form_shown(site, "requester")
    assert "first no-answer in a row (planned visit): the policy asks for an " in shown and "appointment card" in shown
    assert "referred" not in shown
    assert not site.submit_form("requester", {"card": "appointment"}).text
    assert site.store.read().outcome_of(1)["card"] == "appointment"
    assert not in_dms(site, "head", "No answer again")

    # Another planned visit to the same family (written differently) in the afternoon: nobody home again.
    visit_and_back(site, 2, start=(14, 0), back=(14, 30), pupil="ab 123")
    site.click("requester", prompt(site, 2), "Nobody home")
    shown = form_shown(site, "requester")
    assert "second no-answer in a row" in shown and "message card" in shown and "referred" in shown
    assert not site.submit_form("requester", {"card": "message"}).text
    [referral] = in_dms(site, "head", "No answer again")
    assert "visit #2 (ab 123, Mon 23 Nov) by @Sam Visitor is the family's no-answer number 2 in a row (message card left)" in referral.text
    assert "12 Example Road" in referral.text
    assert not in_dms(site, "office", "No answer again") and not in_dms(site, "dsl", "No answer again")
    assert "outcome Nobody home (message card left)" in prompt(site, 2).text


def test_a_safeguarding_concern_goes_to_the_safeguarding_channel_and_the_dsls_only(site):
    visit_and_back(site, 1)
    site.click("requester", prompt(site), "Safeguarding concern")
    empty = site.submit_form("requester", {"what": None})
    assert "Say what the concern is." in empty.text
    assert not site.submit_form("requester", {"what": "Younger sibling at home alone <@channel>", "child_seen": "no"}).text
    [posted] = [m for m in site.messages("#safeguarding") if "Safeguarding concern" in m.text]
    assert "from @Sam Visitor after visit #1" in posted.text and "Younger sibling at home alone" in posted.text
    assert "Child seen" in posted.text
    for dsl in ("dsl", "deputy"):
        assert in_dms(site, dsl, "Safeguarding concern")
    for other in ("head", "office", "companion"):
        assert not in_dms(site, other, "Younger sibling")
    assert not [m for m in site.messages("#office") if "Younger sibling" in m.text]
    [(kind, detail)] = site.store.read().db.conn.execute("SELECT kind, detail FROM concerns WHERE visit_id = 1").fetchall()
    assert kind == "concern" and json.loads(detail)["child_seen"] == "no"


def test_an_incident_flags_the_family_under_review_and_offers_a_debrief(site):
    visit_and_back(site, 1)
    site.click("requester", prompt(site), "Incident")
    assert site.form_title("requester") == "Incident"
    missing = site.submit_form("requester", {"what": "Shouted at and pushed", "injuries": "none"})
    assert "Choose yes or no." in missing.text and site.store.read().outcome_of(1) is None
    answers = {"what": "Shouted at and pushed on the doorstep", "injuries": "none", "abuse": "yes", "police": "no"}
    assert not site.submit_form("requester", answers).text
    [posted] = [m for m in site.messages("#safeguarding") if "Incident on a home visit" in m.text]
    assert "Shouted at and pushed on the doorstep" in posted.text and "Abusive or threatening behaviour" in posted.text
    assert "under review: no new visit until it is reviewed" in posted.text
    assert not [m for m in site.messages("#office") if "Shouted" in m.text]

    # The address and family are under review: a new /visit for them is refused at step 1.
    site.command("requester", "/visit")
    refused = site.submit_form("requester", visit_form(start_time="14:00"))
    assert "under review" in refused.text
    [flag] = site.store.read().db.conn.execute("SELECT flag, visit_id, label FROM register").fetchall()
    assert flag[:2] == ("under_review", 1) and "AB123" in flag[2]

    [offer] = in_dms(site, "requester", "would you like a debrief with the DSL?")
    assert "[Yes, please] [No, thank you]" in offer.text
    assert "Only the person who reported the incident" in site.tampered_click("companion", actions.DEBRIEF_NO, "1").text
    assert "DSL will be in touch" in site.click("requester", offer, "Yes, please").text
    assert "you answered yes" in in_dms(site, "requester", "Debrief after the incident")[0].text
    for dsl in ("dsl", "deputy"):
        assert in_dms(site, dsl, "would like a debrief with the DSL")
    outcome = site.store.read().outcome_of(1)
    assert outcome["debrief_offered_at"] is not None and outcome["debrief_answer"] == "yes"
    assert "already answered yes" in site.tampered_click("requester", actions.DEBRIEF_NO, "1").text


def test_left_unsafe_tells_the_dsl_and_head_at_once_and_flags_under_review(site):
    visit_and_back(site, 1)
    site.click("requester", prompt(site), "Left: felt unsafe")
    assert not site.submit_form("requester", {"why": "A man at the door was drunk and shouting"}).text
    for who in ("dsl", "deputy", "head"):
        [told] = in_dms(site, who, "Left a visit: felt unsafe")
        assert "drunk and shouting" in told.text and "under review" in told.text
    assert not [m for m in site.messages("#safeguarding") if "drunk" in m.text]
    assert not [m for m in site.messages("#office") if "drunk" in m.text]
    assert site.store.read().db.conn.execute("SELECT flag FROM register WHERE visit_id = 1").fetchall() == [("under_review",)]


def test_an_allegation_goes_to_the_head_and_dsl_only(site):
    visit_and_back(site, 1)
    site.click("requester", prompt(site), "Allegation made")
    assert not site.submit_form("requester", {"about": "the visitor", "what": "Parent says I was rude to her"}).text
    for who in ("head", "dsl", "deputy"):
        assert "Parent says I was rude" in in_dms(site, who, "Allegation made")[0].text
    for place in ("#safeguarding", "#office"):
        assert not [m for m in site.messages(place) if "rude" in m.text]
    assert not in_dms(site, "companion", "rude") and not in_dms(site, "office", "rude")
    assert site.store.read().db.conn.execute("SELECT COUNT(*) FROM register").fetchone()[0] == 0


def test_one_reminder_an_hour_after_back_when_no_outcome(site):
    visit_and_back(site, 1)
    site.at(11, 39)
    assert not in_dms(site, "requester", "has no outcome yet")
    site.at(11, 40)
    [reminder] = in_dms(site, "requester", "has no outcome yet")
    assert "Reminder: visit #1 (AB123, Mon 23 Nov) has no outcome yet" in reminder.text and OUTCOME_BUTTONS in reminder.text
    for hour in (12, 13, 16):
        site.at(hour, 0)
    assert len(in_dms(site, "requester", "has no outcome yet")) == 1
    site.click("requester", reminder, "No concerns")
    # Both the question and the reminder show the answer; no buttons are left on either.
    answered = in_dms(site, "requester", "outcome No concerns, given by @Sam Visitor at 16:00")
    assert len(answered) == 2 and not any("[No concerns]" in m.text for m in site.messages("requester"))


def test_given_within_the_hour_means_no_reminder(site):
    visit_and_back(site, 1)
    site.at(11, 0)
    site.click("requester", prompt(site), "No concerns")
    site.at(12, 0)
    assert not in_dms(site, "requester", "has no outcome yet")


def test_not_recorded_reminder_at_half_the_deadline_and_the_dsl_told_at_the_deadline(site):
    visit_and_back(site, 1)
    site.click("requester", prompt(site), "No concerns")
    site.at(22, 39)
    assert not in_dms(site, "requester", "is not recorded on CPOMS yet")
    site.at(22, 40)
    [reminder] = in_dms(site, "requester", "is not recorded on CPOMS yet")
    assert "It must be by Tue 24 Nov 10:40" in reminder.text and "[Recorded]" in reminder.text
    site.clock.set(site.clock() + timedelta(hours=11, minutes=59))
    site.tick()
    assert not in_dms(site, "dsl", "was not recorded on CPOMS")
    site.clock.set(site.clock() + timedelta(minutes=1))
    site.tick()
    for dsl in ("dsl", "deputy"):
        [told] = in_dms(site, dsl, "was not recorded on CPOMS")
        assert "Visit #1 (AB123, Mon 23 Nov) was not recorded on CPOMS by its deadline (10:40). @Sam Visitor should have recorded it." in told.text
    assert not in_dms(site, "head", "CPOMS") and not [m for m in site.messages("#office") if "CPOMS" in m.text]
    for _ in range(3):
        site.clock.set(site.clock() + timedelta(hours=1))
        site.tick()
    assert len(in_dms(site, "requester", "is not recorded on CPOMS yet")) == 1
    assert len(in_dms(site, "dsl", "was not recorded on CPOMS")) == 1
    # Recorded late: the reminder loses its button.
    site.click("requester", reminder, "Recorded")
    assert "[Recorded]" not in in_dms(site, "requester", "recorded on CPOMS by @Sam Visitor")[0].text


def test_back_home_asks_the_outcome_too(site):
    visit_and_out(site, 1)
    site.at(10, 50)
    assert "Safe home" in site.command("requester", "/back", "home").text
    assert OUTCOME_BUTTONS in prompt(site).text


def test_the_timers_fire_once_across_a_restart(workspace):
    from tests.platforms import SlackSite

    ws = workspace
    site = SlackSite.__new__(SlackSite)  # the same workspace, driven through the Site helpers
    site.ws, site.sim, site.runtime, site.clock, site.driver = ws, ws.sim, ws.runtime, ws.clock, ws.driver
    site.names = {}
    visit_and_back(site, 1)

    def restarted() -> Runtime:
        ws.runtime.stop()
        ws.runtime = Runtime(ws.settings, ws.runtime.policy, ws.clock, process_before_response=True)
        return ws.runtime

    site.runtime = restarted()
    site.clock.set(site.clock().replace(hour=11, minute=40))
    site.runtime.tick()  # the new process takes the sweep lease once the old one's has run out
    site.runtime = restarted()
    site.clock.set(site.clock().replace(hour=11, minute=45))
    site.runtime.tick()
    assert len(in_dms(site, "requester", "has no outcome yet")) == 1
    for hours in (11, 12, 13):  # past half the deadline (22:40), then restarted after the DSL was told (10:40)
        site.runtime = restarted()
        site.clock.set(site.clock() + timedelta(hours=hours))
        site.runtime.tick()
    assert len(in_dms(site, "requester", "is not recorded on CPOMS yet")) == 1
    assert len(in_dms(site, "dsl", "was not recorded on CPOMS")) == 1
    assert len(in_dms(site, "requester", "has no outcome yet")) == 1
