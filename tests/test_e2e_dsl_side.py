"""End to end on both platforms, through the real app over HTTP: after the visit, the DSL's side (issue 14 items
2, 4, 5, 6): /concern during a visit, the register and its check in /visit, a visit's record with referrals
(and their follow-up reminder in the sweep) and information shared, the Vulnerable Children's Meeting list,
and every refusal."""
from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest

from bot.runtime import Runtime
from bot.simchat.server import ChatMessage
from flows import actions
from tests.conftest import visit_form
from tests.platforms import PLATFORMS, Answer, Site, make_site
from tests.test_both_platforms import approval, out_at_ten, request_visit

ADDRESS = "12 Example Road"
CONCERN = "Child of about six alone at home, no adult answered"


@pytest.fixture(params=PLATFORMS)
def site(request, tmp_path, clock):
    made = make_site(request.param, tmp_path, clock)
    if made.platform == "google_chat":
        # Chat answers a form with the message itself: keep the last answer so a test can read it.
        send = made.driver.send

        def recording(event, **kwargs):
            made.last = send(event, **kwargs)
            return made.last

        made.driver.send = recording
    try:
        yield made
    finally:
        made.close()


def click_in_reply(site: Site, who: str, command: str, text: str, label: str) -> Answer:
    """Type a command, then click a button in the reply only `who` sees (which opens a form, or answers)."""
    user = site.id(who)
    if site.platform == "slack":
        response = site.driver.command(user, command, text)
        before = len(site.sim.ephemerals(user))
        shown = SimpleNamespace(blocks=response.body["blocks"], ts="1.1", text=response.body.get("text"), channel="D" + user)
        return site._answer(user, site.driver.click(user, shown, label, channel="D" + user), before)
    response = site.driver.command(user, command, text)
    shown = ChatMessage(name="reply/messages/0", space="reply", text=response.body.get("text") or "",
                        cards_v2=response.body.get("cardsV2") or [], create_time="")
    [button] = [b for b in shown.buttons if b["text"] == label]
    return site._answer(user, site.driver.click(user, button["function"], button["parameters"]["value"]))


def told(site: Site, who: str) -> str:
    """What `who` was told once their form was accepted (Slack: a DM; Chat: the message answering the form)."""
    return site.messages(who)[-1].text if site.platform == "slack" else site._seen(site.last.text)


def concerns(site: Site):
    return site.store.db().conn.execute("SELECT visit_id, kind, raised_by FROM concerns ORDER BY id").fetchall()


def add_flag(site: Site, who: str = "dsl", **answers) -> Answer:
    click_in_reply(site, who, "/register", "add", "Add a flag")
    assert site.form_title(who) == "Add to the register"
    return site.submit_form(who, answers)


# ----- /concern -----


def test_a_concern_during_a_visit_goes_at_once_to_the_dsls_and_the_safeguarding_team_only(site, caplog):
    caplog.set_level(logging.DEBUG)
    out_at_ten(site)
    site.clock.set(site.clock().replace(minute=20))
    before = {place: len(site.messages(place)) for place in ("#office", "head", "office", "companion")}

    assert site.command("requester", "/concern", "Child alone").status == 200
    assert site.form_title("requester") == "Safeguarding concern"
    empty = site.submit_form("requester", {"concern": "   "})
    assert "cannot be empty" in empty.text and concerns(site) == []
    sent = site.submit_form("requester", {"concern": CONCERN})
    assert sent.status == 200 and not sent.text, sent.text
    site.tick()

    for place in ("#safeguarding", "dsl", "deputy"):
        [seen] = [m for m in site.messages(place) if "Safeguarding concern" in m]
        assert CONCERN in seen and "during visit #1" in seen and "AB123" in seen and ADDRESS in seen and "@Sam Visitor" in seen
    # Nobody else hears of it: not the office, not the head, not the companion.
    assert {place: len(site.messages(place)) for place in before} == before
    assert "went at once to the DSLs and the safeguarding team" in told(site, "requester")
    assert concerns(site) == [(1, "concern", site.id("requester"))]
    # Part of the visit's record.
    record = site.command("dsl", "/visits", "record 1")
    assert "Safeguarding concern" in record.text and CONCERN in record.text
    # Never in a log line: neither what was typed nor the address.
    # (The Slack SDK's own DEBUG lines echo request bodies; the app runs at INFO and writes none of that.)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO or r.name.startswith("visitsafe"))
    assert "Child" not in logged and ADDRESS not in logged


def test_concern_when_not_out_is_refused_and_opens_no_form(site):
    answer = site.command("requester", "/concern", "worried")
    assert "You are not out on a visit now" in answer.text
    assert concerns(site) == [] and site.messages("#safeguarding") == [] and site.messages("dsl") == []


# ----- the register -----


def test_register_add_list_review_and_clear_with_a_note_kept_in_history_and_visit_checks_it(site):
    bad = add_flag(site, flag="meet_on_premises", reason="")
    assert "Give the address, the family reference, or both" in bad.text and "Write the reason" in bad.text
    # Everything typed is still in the form: a second submission with the gaps filled is accepted.
    done = site.submit_form("dsl", {"address": "12 Example Road, Botley OX2 9AA", "flag": "meet_on_premises",
                                    "reason": "Dog bit a visitor in June"})
    assert done.status == 200 and not done.text, done.text
    assert "Flag #1 added: meet on premises only on 12 Example Road, Botley OX2 9AA" in told(site, "dsl")

    # The same address however it is written (case, spacing, punctuation, the postcode's space) is refused at step 1.
    assert site.command("requester", "/visit").status == 200
    refused = site.submit_form("requester", visit_form(pupil_ref="ZZ9", address="12, EXAMPLE RD.  botley,ox29aa"))
    assert "meet on premises only" in refused.text

    listed = site.command("head", "/register")
    assert "#1 meet on premises only on 12 Example Road, Botley OX2 9AA: Dog bit a visitor in June (@Jo Reid" in listed.text
    reviewed = site.command("head", "/register", "review 1")
    assert "Flag #1 (open)" in reviewed.text

    click_in_reply(site, "head", "/register", "clear 1", "Clear flag #1")
    assert site.form_title("head") == "Clear a flag"
    assert "cannot be empty" in site.submit_form("head", {"note": ""}).text
    cleared = site.submit_form("head", {"note": "Family moved; dog rehomed"})
    assert cleared.status == 200 and not cleared.text, cleared.text
    history = site.command("dsl", "/register", "review 1").text
    assert "Flag #1 (cleared)" in history and "cleared by @Pat Head" in history and "Family moved; dog rehomed" in history
    assert "no open flags" in site.command("dsl", "/register").text
    again = site.command("dsl", "/register", "clear 1")
    assert "already cleared" in again.text

    # Cleared: the same address may be visited again.
    request_visit(site, details=visit_form(pupil_ref="ZZ9", address="12, EXAMPLE RD.  botley,ox29aa"))
    assert approval(site, "dsl")


def test_a_family_flag_and_dont_visit_alone_travel_into_the_risk_assessment(site):
    add_flag(site, pupil_ref="ab-123", flag="under_review", reason="Incident last week")
    assert site.command("requester", "/visit").status == 200
    refused = site.submit_form("requester", visit_form(pupil_ref="AB 123", address="1 Other Street"))
    assert "under review" in refused.text


@pytest.mark.parametrize("who", ["requester", "companion", "office", "senior", "elt"])
def test_only_the_dsl_and_head_may_read_or_change_the_register_or_the_meeting_list(site, who):
    add_flag(site, address="12 Example Road OX2 9AA", flag="dont_visit_alone", reason="Secret reason")
    for text in ("", "list", "add", "review 1", "clear 1", "meeting", "meeting held"):
        answer = site.command(who, "/register", text)
        assert "Only the DSL and the headteacher can see or change the register." in answer.text, (text, answer.text)
        assert "Secret reason" not in answer.text and ADDRESS not in answer.text
    # A forged click on the register's buttons opens nothing.
    assert "Only the DSL and the headteacher" in site.tampered_click(who, actions.REGISTER_CLEAR, "1").text
    assert "Only the DSL and the headteacher" in site.tampered_click(who, actions.REGISTER_ADD, "add").text
    assert site.store.db().conn.execute("SELECT COUNT(*) FROM meetings").fetchone()[0] == 0
    assert site.store.db().conn.execute("SELECT cleared_at FROM register").fetchone()[0] is None


# ----- a visit's record: referrals and sharing -----


def back_at_eleven(site: Site) -> None:
    out_at_ten(site)
    site.clock.set(site.clock().replace(hour=11, minute=0))
    assert "Welcome back" in site.command("requester", "/back").text


def test_a_referral_is_logged_and_its_follow_up_reminder_is_sent_once_by_the_sweep_even_across_a_restart(site):
    back_at_eleven(site)
    click_in_reply(site, "dsl", "/visits", "record 1", "Log a referral")
    assert site.form_title("dsl") == "Log a referral"
    bad = site.submit_form("dsl", {"agency": "", "referred_on": "2026-11-23", "consent": "yes", "follow_up_on": "2026-11-20"})
    assert "Write the agency referred to" in bad.text and "has passed" in bad.text
    future = site.submit_form("dsl", {"agency": "Early Help", "referred_on": "2026-11-24", "consent": "yes"})
    assert "in the future" in future.text
    ok = site.submit_form("dsl", {"agency": "Early Help", "referred_on": "2026-11-23", "consent": "no",
                                  "follow_up_on": "2026-11-25", "notes": "Mum agreed to a call"})
    assert ok.status == 200 and not ok.text, ok.text
    assert "Referral to Early Help logged on visit #1's record. You will get a reminder on Wed 25 Nov at 08:00." in told(site, "dsl")
    record = site.command("dsl", "/visits", "record 1").text
    assert "to Early Help on Mon 23 Nov 2026 by @Jo Reid, family consent: no, follow up Wed 25 Nov" in record
    assert "Mum agreed to a call" in record

    def reminders():
        return [m for m in site.messages("dsl") if "Follow up your referral today" in m]

    for moment in (site.clock() + timedelta(days=1), site.clock().replace(day=25, hour=7, minute=59)):
        site.clock.set(moment)
        site.tick()
    assert reminders() == []
    site.clock.set(site.clock().replace(day=25, hour=8, minute=0))
    site.tick()
    [reminder] = reminders()
    assert "to Early Help after visit #1, made on Mon 23 Nov" in reminder
    for _ in range(3):
        site.clock.advance(timedelta(minutes=5))
        site.tick()
    # A process started afresh on the same database sends it no second time.
    again = Runtime(site.runtime.settings, site.runtime.policy, site.clock, process_before_response=True)
    try:
        again.tick()
        again.settle()
    finally:
        again.stop()
    site.tick()
    assert len(reminders()) == 1
    assert "(reminder sent)" in site.command("dsl", "/visits", "record 1").text


def test_information_passed_to_another_member_of_staff_is_logged_on_the_record(site):
    back_at_eleven(site)
    click_in_reply(site, "requester", "/visits", "record 1", "Log information shared")
    assert site.form_title("requester") == "Log information shared"
    bad = site.submit_form("requester", {"shared_with": [site.id("requester")], "shared_on": "2026-11-23", "why": ""})
    assert "not yourself" in bad.text and "Write the reason it was shared" in bad.text
    ok = site.submit_form("requester", {"shared_with": [site.id("head")], "shared_on": "2026-11-23", "why": "Head asked about attendance"})
    assert ok.status == 200 and not ok.text, ok.text
    record = site.command("dsl", "/visits", "record 1").text
    assert "@Sam Visitor to @Pat Head on Mon 23 Nov 2026: Head asked about attendance" in record
    audit = site.store.read().audit_trail(1)
    assert [a["action"] for a in audit if a["action"] == "information_shared"] == ["information_shared"]
    assert "attendance" not in str(audit)  # the reason is personal data: the audit keeps ids only


@pytest.mark.parametrize("who", ["office", "senior", "elt", "family_support"])
def test_a_visits_record_is_refused_to_anyone_not_named_with_nothing_shown(site, who):
    back_at_eleven(site)
    answer = site.command(who, "/visits", "record 1")
    assert "Only the DSL, the headteacher and the staff who went on visit #1 can see its record." in answer.text
    assert "AB123" not in answer.text and ADDRESS not in answer.text
    for action in (actions.REFERRAL, actions.SHARE):
        assert "can see its record" in site.tampered_click(who, action, "1").text
    # A visit that does not exist is refused in the same words: nobody learns which numbers exist.
    assert "staff who went on visit #99" in site.command(who, "/visits", "record 99").text


def test_the_team_sees_their_visits_record_but_never_an_allegation_and_bad_numbers_are_explained(site):
    back_at_eleven(site)
    now = site.clock()
    with site.store.transaction() as tx:
        tx.add_concern(1, "allegation", site.id("head"), now, {"what": "Parent alleges rudeness"})
    companion = site.command("companion", "/visits", "record 1").text
    assert "Visit #1 record" in companion and "Safeguarding reports (0)" in companion and "rudeness" not in companion
    assert "Parent alleges rudeness" in site.command("dsl", "/visits", "record 1").text
    assert "like /visits record 12" in site.command("dsl", "/visits", "record twelve").text


# ----- the Vulnerable Children's Meeting -----


def test_the_meeting_list_and_meeting_held_starts_the_next_period(site):
    out_at_ten(site)
    site.command("requester", "/concern")
    site.submit_form("requester", {"concern": CONCERN})
    add_flag(site, address="3 Hill Lane OX1 1AA", flag="under_review", reason="Threats to staff")
    with site.store.transaction() as tx:
        tx.add_concern(1, "incident", site.id("requester"), site.clock(), {"what": "Shouting"})
        tx.add_concern(1, "allegation", site.id("head"), site.clock(), {"what": "Allegation"})
        tx.add_referral(1, "Children's social care", site.clock(), site.id("dsl"), True, None, None, site.clock())
    listed = site.command("head", "/register", "meeting").text
    assert "Vulnerable Children's Meeting list: everything so far" in listed
    assert "Under review (1)" in listed and "Threats to staff" in listed
    assert "Incidents (1)" in listed and "visit #1 (AB123): Incident" in listed
    assert "Concerns (1)" in listed and "Safeguarding concern" in listed
    assert "Referrals (1)" in listed and "Children's social care" in listed
    assert "Allegation" not in listed.replace("Allegations", "")

    site.clock.advance(timedelta(hours=2))
    assert "Meeting marked held on Mon 23 Nov 12:" in site.command("dsl", "/register", "meeting held").text
    site.clock.advance(timedelta(minutes=5))
    after = site.command("dsl", "/register", "meeting").text
    assert "since the last meeting on Mon 23 Nov 12:" in after
    assert "Under review (1)" in after and "Incidents (0)" in after and "Concerns (0)" in after and "Referrals (0)" in after


def test_a_date_typed_in_the_wrong_form_is_refused_beside_its_field_and_nothing_typed_is_lost(workspace):
    """Slack's date picker can be bypassed by a client: the server still reads only year-month-day."""
    from tests.test_e2e_safety import out_at_ten as slack_out_at_ten
    from tests.conftest import DSL

    ws = workspace
    slack_out_at_ten(ws)
    response = ws.driver.command(DSL, "/visits", "record 1")
    shown = SimpleNamespace(blocks=response.body["blocks"], ts="1.1", text="", channel="D" + DSL)
    ws.driver.click(DSL, shown, "Log a referral", channel="D" + DSL)
    answers = {"agency": "Early Help", "referred_on": "23/11/2026", "consent": "yes", "notes": "Long notes typed carefully"}
    refused = ws.driver.submit(DSL, answers)
    assert refused.body["response_action"] == "errors"
    assert "'23/11/2026' is not a date I can read: write it like 2026-11-30" in refused.body["errors"]["referred_on"]
    # Slack keeps the modal open with what was typed; nothing was logged.
    assert ws.driver.view(DSL)["callback_id"] == actions.REFERRAL_FORM
    assert ws.runtime.store.read().referrals_where("1 = 1", []) == []
