"""Google Chat wired into the running app (issue 13): every Slack flow over POST /gchat/events, from the same commands/."""
from __future__ import annotations

import pytest

from flows.policy import PolicyError, parse_policy
from tests.test_check_config import GOOD

CHAT_GOOD = {
    **GOOD,
    "platform": "google_chat",
    "channels": {"office": "spaces/AAAAoffice", "safeguarding": "spaces/AAAAsafe"},
    "roles": {"head": ["users/102"], "dsl": ["users/101", "users/103"], "office": ["users/104"]},
}


def test_a_chat_policy_takes_spaces_and_users():
    policy = parse_policy({**CHAT_GOOD, "staff": {"users/101": {"mobile": "07700 900001"}}})
    assert policy.platform == "google_chat" and policy.channels.office == "spaces/AAAAoffice"
    assert parse_policy(GOOD).platform == "slack"


@pytest.mark.parametrize("change, expected", [
    ({"channels": {"office": "C0OFFICE1", "safeguarding": "spaces/AAAAsafe"}},
     "channels.office: 'C0OFFICE1' is not a Google Chat space, which looks like spaces/AAAAbCdEfGh"),
    ({"roles": {"head": ["U0HEAD1"], "dsl": ["users/101"]}},
     "roles.head item 1: 'U0HEAD1' is not a Google Chat user id, which looks like users/"),
    ({"staff": {"jo@example.org": {"mobile": "1"}}}, "'jo@example.org' is not a Google Chat user id"),
])
def test_on_chat_slack_shapes_are_refused_by_name(change, expected):
    with pytest.raises(PolicyError) as refused:
        parse_policy({**CHAT_GOOD, **change})
    assert expected in str(refused.value)


def test_on_slack_chat_shapes_are_refused():
    with pytest.raises(PolicyError, match="'users/101' is not a Slack user id"):
        parse_policy({**GOOD, "roles": {**GOOD["roles"], "head": ["users/101"]}})


# ----- the whole app on Google Chat, over HTTP -----

from datetime import datetime, timezone  # noqa: E402

from flows import actions  # noqa: E402
from tests.chatspace import (  # noqa: E402
    COMPANION, DEPUTY, DSL, ELT, ELT_SPACE, FAMILY_SUPPORT, HEAD, OFFICE_SPACE, REQUESTER, SAFEGUARDING_SPACE, ChatWorkspace, chat_policy,
)
from tests.conftest import MONDAY_9AM, risk_form, visit_form  # noqa: E402
from bot.clock import FixedClock  # noqa: E402


@pytest.fixture
def chat(tmp_path):
    ws = ChatWorkspace(tmp_path, chat_policy(), FixedClock(MONDAY_9AM))
    try:
        yield ws
    finally:
        ws.close()


def chat_answers(answers):
    """Slack-shaped test answers as Chat's formInputs: a date as msSinceEpoch, a time as hours and minutes."""
    out = dict(answers)
    if "date" in out:
        day = datetime.fromisoformat(str(out["date"])).replace(tzinfo=timezone.utc)
        out["date"] = {"dateInput": {"msSinceEpoch": str(int(day.timestamp() * 1000))}}
    if "start_time" in out:
        hours, minutes = str(out["start_time"]).split(":")
        out["start_time"] = {"timeInput": {"hours": int(hours), "minutes": int(minutes)}}
    if "companions" in out:
        out["companions"] = [{"users/U11": COMPANION}.get(f"users/{c}", COMPANION) for c in out["companions"]]
    return out


def dialog_of(answer):
    """The card of a dialog the answer opens (None if it opens none)."""
    return (((answer.body or {}).get("actionResponse") or {}).get("dialogAction") or {}).get("dialog", {}).get("body")


def state_of(card):
    return {p["key"]: p["value"] for p in card["fixedFooter"]["primaryButton"]["onClick"]["action"]["parameters"]}["state"]


def request_visit(ws, user=REQUESTER, details=None, risk=None):
    """`user` fills in both steps of the /visit dialog; returns the last HTTP answer."""
    opened = ws.driver.command(user, "/visit", dialog=True)
    assert dialog_of(opened)["header"]["title"] == "Home visit: 1 of 2"
    step2 = ws.driver.submit(user, actions.VISIT_FORM, chat_answers(details or visit_form()))
    card = dialog_of(step2)
    assert card and card["header"]["title"] == "Home visit: 2 of 2", step2.body
    return ws.driver.submit(user, actions.RISK_FORM, chat_answers(risk or risk_form()), state=state_of(card))


def approval_dm(ws, approver):
    [message] = [m for m in ws.dms(approver) if "[Approve]" in m.plain()]
    return message


def test_request_two_approvals_out_checkin_and_back_on_chat(chat):
    ws = chat
    answer = request_visit(ws)
    assert answer.status == 200 and answer.body["actionResponse"]["dialogAction"]["actionStatus"]["statusCode"] == "OK"
    assert "is with: DSL, headteacher" in ws.dms(REQUESTER)[0].plain()
    dsl_dm = approval_dm(ws, DSL).plain()
    assert "12 Example Road" in dsl_dm and "[Approve]" in dsl_dm and "@Sam Visitor" in dsl_dm  # a Chat mention, shown by name
    for approver in (DSL, HEAD):
        clicked = ws.driver.click_button(approver, approval_dm(ws, approver), "Approve")
        assert clicked.status == 200, clicked.body
    assert "approved" in ws.dms(REQUESTER)[-1].plain().lower()

    ws.clock.set(ws.clock().replace(hour=10))
    out = ws.driver.command(REQUESTER, "/out", "45m")
    assert "You are out on visit #1" in out.text and "privateMessageViewer" not in out.body  # in the DM: only they see it
    ws.runtime.tick()
    assert "Sam Visitor" in ws.channel(OFFICE_SPACE)[-1].plain()  # the office board shows who is out, by name
    ws.clock.set(ws.clock().replace(hour=10, minute=30))
    ws.runtime.tick()
    [prompt] = [m for m in ws.dms(REQUESTER) if "[I'm OK]" in m.plain()]
    assert "checked in at 10:30" in ws.driver.click_button(REQUESTER, prompt, "I'm OK").text
    back = ws.driver.command(REQUESTER, "/back")
    assert "back" in back.text.lower() and "#1" in back.text
    board = ws.driver.command(REQUESTER, "/visits").text
    assert "#1" in board


def test_a_refused_dialog_is_drawn_again_with_its_error_and_every_answer_kept(chat):
    ws = chat
    answer = ws.driver.submit(REQUESTER, actions.VISIT_FORM, chat_answers(visit_form(duration="soon", pupil_ref="XY9")))
    card = dialog_of(answer)
    assert card["header"]["title"] == "Home visit: 1 of 2"
    widgets = card["sections"][0]["widgets"]
    inputs = {w["textInput"]["name"]: w["textInput"].get("value") for w in widgets if "textInput" in w}
    assert inputs["pupil_ref"] == "XY9" and inputs["duration"] == "soon" and inputs["address"].startswith("12 Example Road")
    errors = [w["textParagraph"]["text"] for w in widgets if "textParagraph" in w and "#d93025" in w["textParagraph"]["text"]]
    assert errors and "enter how long, like 45m or 1h30m" in errors[0]
    assert ws.runtime.store.read().visits_where("1=1", []) == []  # nothing saved


def overdue(ws, approvers=(DSL, HEAD)):
    """Approved, out at 10:00 for 45m, check-in answered: at 11:00 the office is alerted."""
    request_visit(ws)
    for approver in approvers:
        ws.driver.click_button(approver, approval_dm(ws, approver), "Approve")
    ws.clock.set(ws.clock().replace(hour=10))
    ws.driver.command(REQUESTER, "/out", "45m")
    for minute in (30,):
        ws.clock.set(ws.clock().replace(hour=10, minute=minute))
        ws.runtime.tick()
    [prompt] = [m for m in ws.dms(REQUESTER) if "[I'm OK]" in m.plain()]
    ws.driver.click_button(REQUESTER, prompt, "I'm OK")
    for hour, minute in ((10, 45), (11, 0)):
        ws.clock.set(ws.clock().replace(hour=hour, minute=minute))
        ws.runtime.tick()


def test_the_ladder_on_chat_with_its_buttons_and_reached_safe_dialog(chat):
    ws = chat
    overdue(ws)
    [alert] = [m for m in ws.channel(OFFICE_SPACE) if "OVERDUE" in m.plain()]
    seen = alert.plain()
    assert "07700 900010" in seen and "07700 900011" in seen  # mobiles from the policy's staff directory
    assert "@Sam Visitor's mobile: 07700 900010" in seen and "users/" not in seen  # people by name, in the card too
    assert "[I'm handling this] [Reached, safe] [No answer]" in seen
    assert "12 Example Road" not in seen
    handling = ws.driver.click_button(HEAD, alert, "I'm handling this")
    assert handling.status == 200 and "privateMessageViewer" in handling.body  # in a space: only the clicker sees it
    safe = ws.driver.click_button(HEAD, alert, "Reached, safe")
    card = dialog_of(safe)
    assert card["header"]["title"] == "Confirm safe"
    empty = ws.driver.submit(HEAD, actions.SAFE_FORM, {"note": ""}, space=OFFICE_SPACE, state=state_of(card))
    assert dialog_of(empty), empty.body  # refused: drawn again
    done = ws.driver.submit(HEAD, actions.SAFE_FORM, {"note": "Spoke to Sam at 11:05"}, space=OFFICE_SPACE, state=state_of(card))
    assert done.body["actionResponse"]["type"] == "NEW_MESSAGE", done.body
    ws.clock.set(ws.clock().replace(hour=12))
    ws.runtime.tick()
    assert not [m for m in ws.channel(SAFEGUARDING_SPACE) if "#1" in m.plain() and "NOT RETURNED" in m.plain()]


def test_a_forged_or_stale_button_value_is_refused(chat):
    ws = chat
    for value in ("01", "1,2", "٣", "1 ", ""):
        assert "not one of mine" in ws.driver.click(DSL, actions.APPROVE, value).text
    assert "not one of mine" in ws.driver.click(DSL, "no_such_function", "1").text


def test_sos_on_chat_alerts_the_safeguarding_space(chat):
    ws = chat
    request_visit(ws)
    for approver in (DSL, HEAD):
        ws.driver.click_button(approver, approval_dm(ws, approver), "Approve")
    ws.clock.set(ws.clock().replace(hour=10))
    ws.driver.command(REQUESTER, "/out", "45m")
    answer = ws.driver.command(REQUESTER, "/sos", "dog loose")
    assert answer.status == 200 and "Alert sent to the safeguarding team" in answer.text
    assert [m for m in ws.channel(SAFEGUARDING_SPACE) if "SOS" in m.plain()]


def test_the_duress_word_typed_in_the_dm_raises_the_silent_alarm(chat):
    ws = chat
    opened = ws.driver.command(REQUESTER, "/visitsafe", "duress", dialog=True)
    assert dialog_of(opened)["header"]["title"] == "Your duress word"
    saved = ws.driver.submit(REQUESTER, actions.DURESS_FORM, {"word": "bluebell"})
    assert "Saved" in saved.body["actionResponse"]["dialogAction"]["actionStatus"]["userFacingMessage"]
    request_visit(ws)
    for approver in (DSL, HEAD):
        ws.driver.click_button(approver, approval_dm(ws, approver), "Approve")
    ws.clock.set(ws.clock().replace(hour=10))
    ws.driver.command(REQUESTER, "/out", "45m")
    normal = ws.driver.say(REQUESTER, "all fine").text
    assert not [m for m in ws.channel(SAFEGUARDING_SPACE) if "SILENT ALARM" in m.plain()]
    typed = ws.driver.say(REQUESTER, "Bluebell")
    assert typed.status == 200 and typed.text == normal  # whoever watches the screen sees the usual answer
    [alarm] = [m for m in ws.channel(SAFEGUARDING_SPACE) if "SILENT ALARM" in m.plain()]
    assert "@Sam Visitor" in alarm.plain()
    assert "SILENT ALARM" in ws.dms(DSL)[-1].plain()
    assert not any("SILENT ALARM" in m.plain() for m in ws.channel(OFFICE_SPACE))


def test_added_to_a_space_says_hello_and_removed_does_nothing(chat):
    assert "/visit" in chat.driver.added(REQUESTER).text
    assert chat.driver.removed(REQUESTER, space=OFFICE_SPACE).status == 200


@pytest.mark.parametrize("how", ["missing", "expired", "wrong audience", "wrong issuer", "untrusted key"])
def test_a_request_without_a_valid_token_is_refused_401_and_changes_nothing(chat, how):
    ws = chat
    event = ws.driver._event("MESSAGE", REQUESTER, None, message={"text": "/sos", "argumentText": "",
                                                                  "annotations": [{"type": "SLASH_COMMAND", "slashCommand": {"commandName": "/sos"}}]})
    sim = ws.sim
    token = {
        "expired": lambda: sim.mint_token(ws.audience, issued_at=1_600_000_000, expires_in=60),
        "wrong audience": lambda: sim.mint_token("999999999999"),
        "wrong issuer": lambda: sim.mint_token(ws.audience, iss="someone@example.com"),
        "untrusted key": lambda: sim.mint_token(ws.audience, untrusted=True),
    }.get(how)
    answer = ws.driver.send(event, authorization="") if token is None else ws.driver.send(event, token=token())
    assert answer.status == 401
    assert ws.runtime.store.read().audit_trail(1) == [] and ws.sim.calls_to("spaces.messages.create") == []


def test_confidential_on_chat_creates_a_space_of_the_two(chat):
    ws = chat
    answer = ws.driver.command(FAMILY_SUPPORT, "/confidential")
    assert "I opened a confidential conversation" in answer.text, answer.text
    [space] = [s for s, members in ws.sim.members.items() if members]
    assert ws.sim.members[space] == [FAMILY_SUPPORT, ELT]
    [opening] = ws.channel(space)
    assert "Fran Support" in opening.plain() or FAMILY_SUPPORT in opening.plain()


def test_confidential_falls_back_to_the_policys_space_when_chat_refuses(tmp_path):
    ws = ChatWorkspace(tmp_path, chat_policy(confidential_fallback_space=ELT_SPACE), FixedClock(MONDAY_9AM))
    try:
        ws.sim.refuse_app_spaces()
        answer = ws.driver.command(FAMILY_SUPPORT, "/confidential")
        assert "could not create a private space" in answer.text and ELT_SPACE in answer.text, answer.text
        assert len(ws.channel(ELT_SPACE)) == 1
    finally:
        ws.close()


def test_confidential_without_a_fallback_says_nothing_was_opened(chat):
    chat.sim.refuse_app_spaces()
    answer = chat.driver.command(FAMILY_SUPPORT, "/confidential")
    assert "nothing was opened or recorded" in answer.text and "http_403" in answer.text


def test_confidential_is_refused_to_anyone_else(chat):
    assert "Only family support workers" in chat.driver.command(REQUESTER, "/confidential").text
    assert chat.sim.calls_to("spaces.create") == []


def test_a_person_without_a_dm_with_the_app_is_an_alert_that_falls_back_like_slack(chat):
    ws = chat
    ws.sim.no_dm_for(DSL)  # Jo has not added the app in Chat: findDirectMessage answers 404
    overdue(ws, approvers=(DEPUTY, HEAD))
    ws.clock.set(ws.clock().replace(hour=11, minute=15))
    ws.runtime.tick()  # the safeguarding tier: the space and the DSLs
    ws.clock.set(ws.clock().replace(hour=11, minute=16))  # the policy's delivery_fallback_after (60 s) later
    ws.runtime.tick()
    assert ws.dms(DSL) == []
    [copy] = [m.plain() for m in ws.channel(SAFEGUARDING_SPACE) if "could not be delivered" in m.plain()]
    assert "@Jo Reid" in copy and "07700 900010" in copy
    assert any("NOT RETURNED" in m.plain() or "OVERDUE" in m.plain() for m in ws.dms(DEPUTY))


@pytest.mark.parametrize("command", ["run", "serve"])
def test_run_and_serve_on_chat_name_the_missing_chat_variables(tmp_path, command):
    import yaml

    from tests.chatspace import chat_policy_data
    from tests.test_cli import visitsafe

    policy = tmp_path / "visitsafe.yml"
    policy.write_text(yaml.safe_dump(chat_policy_data()))
    env = {"VISITSAFE_CONFIG": str(policy), "VISITSAFE_DB": str(tmp_path / "v.db"), "GOOGLE_CHAT_AUDIENCE": "",
           "GOOGLE_APPLICATION_CREDENTIALS": ""}
    result = visitsafe(command, env=env)
    assert result.returncode == 2
    assert "GOOGLE_CHAT_AUDIENCE, GOOGLE_APPLICATION_CREDENTIALS are not set" in result.stderr
    assert "SLACK_" not in result.stderr
    result = visitsafe(command, env={**env, "GOOGLE_CHAT_AUDIENCE": "123456789012"})
    assert result.returncode == 2 and "GOOGLE_APPLICATION_CREDENTIALS is not set" in result.stderr
    result = visitsafe(command, env={**env, "GOOGLE_CHAT_AUDIENCE": "123456789012", "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nokey.json")})
    assert result.returncode == 2 and "nokey.json', which is not a file" in result.stderr


def test_on_chat_the_routes_are_gchat_events_and_healthz_and_a_huge_body_is_refused(chat):
    import json as json_lib
    import urllib.error
    import urllib.request

    base = chat.url.rsplit("/", 2)[0]
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=10) as answer:
            health = answer.read()
    except urllib.error.HTTPError as degraded:  # no sweep has run yet
        health = degraded.read()
    assert json_lib.loads(health)["platform"] == "google_chat" and "slack" not in json_lib.loads(health)
    with pytest.raises(urllib.error.HTTPError) as slack:
        urllib.request.urlopen(urllib.request.Request(base + "/slack/events", data=b"{}", method="POST"), timeout=10)
    assert slack.value.code == 404
    # The handler's own cap (waitress has one too): refused before the token is checked or the body read.
    import io

    statuses = []
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(1024 * 1024 + 1), "wsgi.input": io.BytesIO(b""),
               "HTTP_AUTHORIZATION": f"Bearer {chat.sim.mint_token(chat.audience)}", "PATH_INFO": "/gchat/events"}
    chat.runtime.wsgi(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["413 Payload Too Large"]


def test_the_chat_path_imports_nothing_from_slack():
    import subprocess
    import sys

    code = ("import sys, bot.gchat.app, bot.gchat.conversations, bot.gchat.messenger;"
            "print([m for m in sys.modules if m.startswith(('slack_', 'bot.slack'))])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_button_is_authorised_against_the_database_for_the_clicker_not_the_message(chat):
    ws = chat
    request_visit(ws)
    button = approval_dm(ws, DSL)
    refused = ws.driver.click_button(COMPANION, button, "Approve")  # someone else clicks (a forwarded card, a forged event)
    assert refused.text.startswith("\u26a0") and "approved" not in ws.dms(REQUESTER)[-1].plain().lower()
    own = ws.driver.click(REQUESTER, actions.APPROVE, "1")
    assert own.text.startswith("\u26a0")
    assert ws.runtime.store.read().visit(1).state.value == "requested"


def test_forms_open_only_where_chat_allows_a_dialog(chat):
    """Chat opens a dialog only for a command configured to (README) or a button whose action says
    OPEN_DIALOG; anything else answering with a dialog is an error in Chat."""
    from bot.gchat import render
    from flows.messages import Button

    for action in (actions.DECLINE, actions.CHECKIN_EXTEND, actions.ALERT_SAFE, actions.CONFIDENTIAL):
        widget = render._button(Button("Open", action, "1"))
        assert widget["onClick"]["action"]["interaction"] == "OPEN_DIALOG"
    assert "interaction" not in render._button(Button("Approve", actions.APPROVE, "1"))["onClick"]["action"]

    # A command the administrator did not set to open a dialog gets a message saying how to fix it, not an error.
    for command, argument in (("/visitsafe", "duress"), ("/visit", "")):
        answer = chat.driver.command(REQUESTER, command, argument, dialog=False)
        assert answer.status == 200 and "tick *Opens a dialog*" in answer.text and command in answer.text, answer.body


def test_doctor_on_chat_lists_who_has_not_added_the_app(chat, tmp_path):
    import yaml

    from tests.chatspace import chat_policy_data
    from tests.test_cli import visitsafe

    policy = tmp_path / "doctor.yml"
    policy.write_text(yaml.safe_dump(chat_policy_data()))
    env = {"VISITSAFE_CONFIG": str(policy), "VISITSAFE_DB": str(tmp_path / "d.db"),
           "GOOGLE_APPLICATION_CREDENTIALS": str(chat.sim.write_service_account()), "GOOGLE_CHAT_API_URL": chat.sim.base_url}
    healthy = visitsafe("doctor", env=env)
    assert healthy.returncode == 0 and "OK: everyone" in healthy.stdout, healthy.stdout + healthy.stderr
    chat.sim.no_dm_for(DSL)
    found = visitsafe("doctor", env=env)
    assert found.returncode == 1
    [line] = [line for line in found.stdout.splitlines() if line.startswith("PROBLEM")]
    assert f"roles.dsl: {DSL} has not added VisitSafe in Google Chat" in line and "start a chat with it" in line
