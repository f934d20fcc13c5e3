"""End to end over HTTP: /confidential opens a group DM of a family support worker, an ELT member and
the bot (issue 13 item 4); the bot records that it exists, never its contents, and refuses anyone else."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from flows import actions
from tests.conftest import COMPANION, DSL, ELT, FAMILY_SUPPORT, HEAD, OFFICE, REQUESTER, make_policy, risk_form
from tests.test_e2e_slack import approval_dm, request_visit

BOT = "UBOT"
ELT2 = "U07"
ADDRESS, PUPIL = "12 Example Road", "AB123"


def records(ws):
    return ws.runtime.store.read().confidential_conversations()


def audited(ws):
    rows = ws.runtime.store.db().conn.execute("SELECT actor, visit_id, detail FROM audit WHERE action = 'confidential_opened'").fetchall()
    return [(actor, visit_id, json.loads(detail)) for actor, visit_id, detail in rows]


def group_dms(ws):
    """Every group DM the bot opened: {channel id: its members}."""
    opened = {c.params["users"] for c in ws.sim.calls_to("conversations.open") if not c.failed and "," in c.params.get("users", "")}
    return {channel: ws.sim.members(channel) for channel in ws.sim.inbox() if ws.sim.members(channel)} if opened else {}


def nothing_created(ws):
    assert records(ws) == [] and audited(ws) == [] and group_dms(ws) == {}
    assert [c for c in ws.sim.calls_to("conversations.open") if "," in c.params.get("users", "")] == []


def the_one_conversation(ws, opener, other, visit_id=None):
    """The single group DM: exactly the two and the bot, one opening message, recorded and audited by ids."""
    [record] = records(ws)
    channel = record["conversation"]
    assert ws.sim.members(channel) == sorted([opener, other, BOT])
    [opening] = ws.sim.messages(channel)
    seen = opening.plain()
    assert f"opened by <@{opener}> with <@{other}> on Mon 23 Nov" in seen
    assert (f"about visit #{visit_id}" in seen) == (visit_id is not None)
    assert ADDRESS not in seen and PUPIL not in seen
    assert {k: record[k] for k in ("opened_by", "with_user", "visit_id")} == {"opened_by": opener, "with_user": other, "visit_id": visit_id}
    assert record["opened_at"] == ws.clock()
    assert audited(ws) == [(opener, visit_id, {"with_user": other, "conversation": channel, "record": record["id"]})]
    return channel


def test_a_family_support_worker_opens_one_with_the_only_elt_member(workspace):
    ws = workspace
    answer = ws.driver.command(FAMILY_SUPPORT, "/confidential")
    assert answer.status == 200 and ws.sim.views(FAMILY_SUPPORT) == []  # one ELT member: nothing to pick
    channel = the_one_conversation(ws, FAMILY_SUPPORT, ELT)
    assert "I opened a confidential conversation between you and <@U05>" in ws.dms(FAMILY_SUPPORT)[-1].plain()

    # Nothing else is ever posted into it, whatever the sweep does later.
    for minutes in (1, 30, 90):
        ws.clock.set(ws.clock() + timedelta(minutes=minutes))
        ws.runtime.tick()
    assert len(ws.sim.messages(channel)) == 1
    assert [c for c in ws.sim.calls_to("chat.postMessage") if c.params["channel"] == channel and not c.failed].__len__() == 1


def approved_visit_of_the_worker(ws):
    """Visit #1: the family support worker with a companion, approved by the DSL and the head."""
    request_visit(ws, user=FAMILY_SUPPORT, risk=risk_form(companions=[COMPANION]))
    for approver in (DSL, HEAD):
        ws.driver.click(approver, approval_dm(ws, approver), "Approve")


def test_a_worker_opens_one_about_their_visit_by_number_or_from_the_button_on_it(workspace):
    ws = workspace
    approved_visit_of_the_worker(ws)
    ws.driver.command(FAMILY_SUPPORT, "/confidential", "1")
    the_one_conversation(ws, FAMILY_SUPPORT, ELT, visit_id=1)

    # Signing out offers the button; clicking it opens (Slack returns the same group DM) and records it again.
    ws.clock.set(ws.clock().replace(hour=10))
    out = ws.driver.command(FAMILY_SUPPORT, "/out")
    assert "You are out on visit #1" in out.text
    labels = [e["text"]["text"] for b in out.body["blocks"] for e in b.get("elements") or [] if e.get("type") == "button"]
    assert "Confidential chat with ELT" in labels
    ws.driver.action(FAMILY_SUPPORT, actions.CONFIDENTIAL, "1")
    assert "I opened a confidential conversation" in ws.sim.ephemerals(FAMILY_SUPPORT)[-1].plain()
    first, second = records(ws)
    assert second["conversation"] == first["conversation"] and second["visit_id"] == 1
    assert len(ws.sim.messages(first["conversation"])) == 2  # one opening message per opening, nothing else


def test_an_elt_member_opens_one_with_the_family_support_worker(workspace):
    ws = workspace
    ws.driver.command(ELT, "/confidential")
    the_one_conversation(ws, ELT, FAMILY_SUPPORT)


@pytest.mark.parametrize("who", [REQUESTER, DSL, OFFICE, HEAD])
def test_anyone_else_is_refused_and_nothing_is_created(workspace, who):
    ws = workspace
    answer = ws.driver.command(who, "/confidential")
    assert "Only family support workers and members of the ELT can open a confidential conversation" in answer.text
    ws.driver.action(who, actions.CONFIDENTIAL, "1")
    assert "Only family support workers" in ws.sim.ephemerals(who)[-1].plain()
    nothing_created(ws)


def test_a_visit_that_is_not_theirs_is_refused(workspace):
    ws = workspace
    request_visit(ws)  # visit #1: the teacher's, not the worker's
    answer = ws.driver.command(FAMILY_SUPPORT, "/confidential", "1")
    assert "Visit #1 is not one of yours" in answer.text
    ws.driver.action(FAMILY_SUPPORT, actions.CONFIDENTIAL, "1")
    assert "Visit #1 is not one of yours" in ws.sim.ephemerals(FAMILY_SUPPORT)[-1].plain()
    assert "Visit #99 is not one of yours" in ws.driver.command(FAMILY_SUPPORT, "/confidential", "99").text
    assert "like `/confidential 12`" in ws.driver.command(FAMILY_SUPPORT, "/confidential", "12 Example Road").text
    # An ELT member cannot open one about a visit no family support worker is on.
    assert "No family support worker is on visit #1" in ws.driver.command(ELT, "/confidential", "1").text
    nothing_created(ws)


def test_slack_failing_to_open_the_conversation_is_said_and_nothing_is_recorded(workspace):
    ws = workspace
    ws.sim.fail("conversations.open", status=503)
    ws.driver.command(FAMILY_SUPPORT, "/confidential")
    said = ws.dms(FAMILY_SUPPORT)[-1].plain()
    assert "I could not open the confidential conversation with <@U05>" in said and "nothing was opened or recorded" in said
    assert records(ws) == [] and audited(ws) == []
    ws.runtime.tick()
    assert all(not channel.startswith("G") for channel in ws.sim.inbox())


def test_a_conversation_opened_but_not_recorded_is_said_and_nothing_is_posted_in_it(workspace):
    ws = workspace
    ws.runtime.store.query_only = True  # the disk refuses writes after Slack opened the group DM
    ws.driver.command(FAMILY_SUPPORT, "/confidential")
    ws.runtime.store.query_only = False
    said = ws.dms(FAMILY_SUPPORT)[-1].plain()
    assert "is open (among your direct messages), but I could not record that it exists, so I posted nothing in it" in said
    assert records(ws) == [] and audited(ws) == []
    [channel] = [c for c in ws.sim.inbox() if c.startswith("G")] or [None]
    assert channel is None  # nothing posted into the group DM


def test_the_record_goes_after_the_retention_period(workspace):
    ws = workspace
    ws.driver.command(FAMILY_SUPPORT, "/confidential")
    assert len(records(ws)) == 1
    ws.clock.set(ws.clock() + timedelta(days=364))
    ws.runtime.tick()
    assert len(records(ws)) == 1
    ws.clock.set(ws.clock() + timedelta(days=2))
    ws.runtime.tick()
    assert records(ws) == []
    assert len(audited(ws)) == 1  # the audit line (ids only) stays, as every audit line does


class TestWithTwoEltMembers:
    @pytest.fixture
    def policy(self):
        return make_policy(roles={"dsl": [DSL], "head": [HEAD], "office": [OFFICE], "elt": [ELT, ELT2], "family_support": [FAMILY_SUPPORT]})

    def test_the_worker_picks_the_elt_member_in_a_form(self, workspace):
        ws = workspace
        ws.sim.add_user(ELT2, "Ash Deputy")
        ws.driver.command(FAMILY_SUPPORT, "/confidential")
        form = ws.driver.view(FAMILY_SUPPORT)
        [picker] = [b for b in form["blocks"] if b.get("block_id") == "with"]
        assert [(o["value"], o["text"]["text"]) for o in picker["element"]["options"]] == [(ELT, "Lee Leader"), (ELT2, "Ash Deputy")]
        assert records(ws) == []  # nothing is opened until they choose
        answer = ws.driver.submit(FAMILY_SUPPORT, {"with": ELT2})
        assert answer.status == 200 and not (answer.body or {}).get("errors")
        the_one_conversation(ws, FAMILY_SUPPORT, ELT2)

    def test_a_tampered_choice_is_refused_beside_the_field(self, workspace):
        ws = workspace
        ws.driver.command(FAMILY_SUPPORT, "/confidential")
        form = ws.driver.view(FAMILY_SUPPORT)
        [picker] = [b for b in form["blocks"] if b.get("block_id") == "with"]
        picker["element"]["options"].append({"text": {"type": "plain_text", "text": "DSL"}, "value": DSL})
        answer = ws.driver.submit(FAMILY_SUPPORT, {"with": DSL})
        assert answer.body["errors"] == {"with": "Choose one of the people listed: nothing was opened."}
        nothing_created(ws)


def test_a_record_about_a_visit_goes_when_that_visit_is_purged(workspace):
    ws = workspace
    approved_visit_of_the_worker(ws)
    ws.driver.command(FAMILY_SUPPORT, "/confidential", "1")
    ws.clock.set(ws.clock().replace(hour=10))
    ws.driver.command(FAMILY_SUPPORT, "/out")
    ws.clock.set(ws.clock().replace(hour=10, minute=40))
    ws.driver.command(FAMILY_SUPPORT, "/back")
    back_at = ws.clock()
    ws.clock.set(back_at + timedelta(days=365) - timedelta(minutes=1))
    ws.runtime.tick()
    assert len(records(ws)) == 1  # opened more than a year ago, but its visit still holds its details
    ws.clock.set(back_at + timedelta(days=365, minutes=1))
    ws.runtime.tick()
    assert ws.runtime.store.read().visit(1).details.address != "12 Example Road, Botley OX2 9AA"  # purged
    assert records(ws) == []
