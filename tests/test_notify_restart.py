"""A real `visitsafe serve` killed with SIGKILL while Notify holds an SMS's reply, then restarted: the SMS tier (or an
SOS's SMS) went on time and each text is sent once (the restart finds it by its reference), with no address or pupil
reference."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import yaml

from bot.simnotify import SimNotify
from bot.simslack import SimSlack
from flows.policy import Policy, parse_policy
from storage.store import Store
from tests.conftest import DSL, HEAD, POLICY, REQUESTER
from tests.processes import pending, seed_out, serve, wait_for

LADDER = [
    {"after": "0s", "notify": ["visitor"]},
    {"after": "2s", "notify": ["office", "sms:dsl"]},
    {"after": "60m", "notify": ["head", "dsl"]},
]


def texting_school(tmp_path, notify, monkeypatch, more_staff=None) -> tuple[Policy, Store]:
    """The test school with one DSL, a fast sweep and SMS through `notify`, written where `serve` reads it; its store."""
    template = notify.add_template("sms", "((message))")
    staff = {DSL: {"name": "Jo Reid", "mobile": "07700 900001"}, HEAD: {"name": "Pat Head", "mobile": "07700 900002"},
             REQUESTER: {"name": "Sam Visitor", "mobile": "07700 900010"}, **(more_staff or {})}
    raw = {**POLICY, "sweep_interval": "1s", "escalation": LADDER, "roles": {**POLICY["roles"], "dsl": [DSL]},
           "notify": {"sms_template": template}, "staff": staff}
    raw.pop("checkin_interval")
    (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("NOTIFY_API_KEY", notify.api_key())
    monkeypatch.setenv("NOTIFY_BASE_URL", notify.base_url)
    policy = parse_policy(raw)
    return policy, Store(tmp_path / "visitsafe.db", policy)


def killed_once_sent(tmp_path, sim, notify, what: str) -> None:
    """Serve until Notify has accepted a text, then SIGKILL the process (while Notify holds its reply)."""
    one = serve(tmp_path, sim)
    try:
        wait_for(lambda: notify.sent, 30, what)
    finally:
        one.kill()
        one.wait()


def restarted_until(tmp_path, sim, condition, what: str) -> None:
    """Serve again until `condition`, then a few more ticks (in which nothing more may be sent), then stop."""
    two = serve(tmp_path, sim)
    try:
        wait_for(condition, 30, what)
        time.sleep(1.5)
    finally:
        two.kill()
        two.wait()


def test_sigkill_while_an_sms_reply_is_held_then_restart_texts_once_on_time(tmp_path, monkeypatch):
    with SimNotify() as notify, SimSlack() as sim:
        policy, store = texting_school(tmp_path, notify, monkeypatch)
        # Notify accepts the text at once but its reply takes 20 s: the process dies before it can record it.
        notify.slow(20.0)

        due = datetime.now(timezone.utc) + timedelta(seconds=2)
        visit = seed_out(store, policy, due)
        killed_once_sent(tmp_path, sim, notify, "the SMS tier")
        tier_at = (due + timedelta(seconds=2)).timestamp()
        [first] = notify.sent
        assert first.at - tier_at < 2.5, first.at - tier_at  # on time: within a sweep and a send of the tier's time

        restarted_until(tmp_path, sim, lambda: pending(store) == 0, "the restarted process to settle the SMS")

    assert len(notify.sent) == 1, [s.reference for s in notify.sent]
    assert ("GET", "/v2/notifications", 200) in notify.requests  # looked up by its reference, not sent again
    body = first.body
    assert f"home visit #{visit.id}" in body and "Sam Visitor" in body and "07700 900010" in body
    assert visit.details.address not in body and visit.details.pupil_ref not in body


def test_sigkill_while_an_sos_sms_reply_is_held_then_restart_texts_each_responder_once(tmp_path, monkeypatch):
    from commands.context import Ctx
    from commands.safety import sos
    from tests.conftest import OFFICE

    with SimNotify() as notify, SimSlack() as sim:
        policy, store = texting_school(tmp_path, notify, monkeypatch, {OFFICE: {"name": "Alex Office", "mobile": "07700 900003"}})
        sim.refuse_token()  # the token revoked: the SOS can only go by SMS
        notify.slow(20.0)  # the first SMS is accepted at once, its reply held 20 s

        visit = seed_out(store, policy, datetime.now(timezone.utc) + timedelta(hours=1))
        sos(Ctx(store, policy, lambda: datetime.now(timezone.utc)), REQUESTER, "man at the door of 12 Example Road")
        raised = time.time()
        killed_once_sent(tmp_path, sim, notify, "the SOS's first SMS")
        first = notify.sent[0].at - raised

        # The chat alerts stay refused (and retried); the texts are what must settle.
        texts_waiting = "SELECT COUNT(*) FROM outbox WHERE target LIKE 'sms:%' AND status IN ('pending', 'sending')"
        restarted_until(tmp_path, sim, lambda: len(notify.sent) >= 2 and store.db().execute(texts_waiting).fetchone()[0] == 0,
                        "the restarted process to text the rest")

    assert sorted(s.to for s in notify.sent) == ["+447700900001", "+447700900003"], [s.reference for s in notify.sent]
    assert ("GET", "/v2/notifications", 200) in notify.requests  # the held one looked up by its reference, not resent
    assert first < 10, first  # the first process's first tick, not a sweep interval or a fallback time later
    print(f"[SOS, token refused, real process] first SMS {first:.2f} s after the SOS (process start included); SIGKILL, restart: {len(notify.sent)} SMS for 2 people")
    for sms in notify.sent:
        assert f"home visit #{visit.id}" in sms.body and "SOS" in sms.body
        assert visit.details.address not in sms.body and "man at the door" not in sms.body and visit.details.pupil_ref not in sms.body
