"""A real `visitsafe serve` killed with SIGKILL while Notify holds an SMS's reply, then restarted: the SMS tier
went on time and the text is sent once (the restart finds it by its reference), with no address or pupil reference."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import yaml

from bot.simnotify import SimNotify
from bot.simslack import SimSlack
from flows.policy import parse_policy
from storage.store import Store
from tests.conftest import DSL, HEAD, POLICY, REQUESTER
from tests.processes import pending, seed_out, serve, wait_for

LADDER = [
    {"after": "0s", "notify": ["visitor"]},
    {"after": "2s", "notify": ["office", "sms:dsl"]},
    {"after": "60m", "notify": ["head", "dsl"]},
]


def test_sigkill_while_an_sms_reply_is_held_then_restart_texts_once_on_time(tmp_path, monkeypatch):
    with SimNotify() as notify, SimSlack() as sim:
        template = notify.add_template("sms", "((message))")
        raw = {
            **POLICY, "sweep_interval": "1s", "escalation": LADDER,
            "roles": {**POLICY["roles"], "dsl": [DSL]},
            "notify": {"sms_template": template},
            "staff": {DSL: {"name": "Jo Reid", "mobile": "07700 900001"}, HEAD: {"name": "Pat Head", "mobile": "07700 900002"},
                      REQUESTER: {"name": "Sam Visitor", "mobile": "07700 900010"}},
        }
        raw.pop("checkin_interval")
        (tmp_path / "visitsafe.yml").write_text(yaml.safe_dump(raw))
        policy = parse_policy(raw)
        store = Store(tmp_path / "visitsafe.db", policy)
        monkeypatch.setenv("NOTIFY_API_KEY", notify.api_key())
        monkeypatch.setenv("NOTIFY_BASE_URL", notify.base_url)
        # Notify accepts the text at once but its reply takes 20 s: the process dies before it can record it.
        notify.slow(20.0)

        due = datetime.now(timezone.utc) + timedelta(seconds=2)
        visit = seed_out(store, policy, due)
        one = serve(tmp_path, sim)
        try:
            wait_for(lambda: notify.sent, 30, "the SMS tier")
        finally:
            one.kill()  # SIGKILL while the reply is held
            one.wait()
        tier_at = (due + timedelta(seconds=2)).timestamp()
        [first] = notify.sent
        assert first.at - tier_at < 2.5, first.at - tier_at  # on time: within a sweep and a send of the tier's time

        two = serve(tmp_path, sim)
        try:
            wait_for(lambda: pending(store) == 0, 30, "the restarted process to settle the SMS")
            time.sleep(1.5)  # a few more ticks: nothing more may be sent
        finally:
            two.kill()
            two.wait()

    assert len(notify.sent) == 1, [s.reference for s in notify.sent]
    assert ("GET", "/v2/notifications", 200) in notify.requests  # looked up by its reference, not sent again
    body = first.body
    assert f"home visit #{visit.id}" in body and "Sam Visitor" in body and "07700 900010" in body
    assert visit.details.address not in body and visit.details.pupil_ref not in body
