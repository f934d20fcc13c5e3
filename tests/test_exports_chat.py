"""Issue 14 item 7 and 9 on Google Chat: a Chat app cannot upload a file, so the asker gets one-time download links
in a reply only they see."""
from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

from flows.visit import State
from tests.chatspace import COMPANION, DSL, HEAD, OFFICE_SPACE, REQUESTER
from tests.conftest import MONDAY_9AM
from tests.factories import make_answers, make_visit
from tests.test_exports import rows_of
from tests.test_gchat_app import chat  # noqa: F401 - the Chat workspace fixture


def seed_visit(ws):
    start = MONDAY_9AM + timedelta(hours=1)
    with ws.runtime.store.transaction() as tx:
        visit = make_visit(ws.runtime.policy, requester=REQUESTER, answers=make_answers(companions=(COMPANION,)), state=State.returned, now=start, start_at=start, departed_at=start,
                           expected_return=start + timedelta(minutes=45), returned_at=start + timedelta(minutes=40))
        visit_id = tx.add_visit(visit, start).id
        tx.audit(REQUESTER, "back", start + timedelta(minutes=40), visit_id)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_the_dsl_gets_a_one_time_private_link_to_the_safety_log(chat):
    ws = chat
    seed_visit(ws)
    ws.runtime.chat_app.public_url = f"http://127.0.0.1:{ws.server.port}"
    answer = ws.driver.command(DSL, "/visits", "export 2026-11-23", space=OFFICE_SPACE)  # asked in a space: the reply is theirs only
    assert answer.body.get("privateMessageViewer", {}).get("name") == DSL
    [link] = [w for w in answer.text.split() if "/downloads/" in w]
    status, body, headers = get(link)
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="home-visiting-safety-log-2026-11-23-to-2026-11-23.csv"'
    header, row = rows_of(body)
    assert header[1] == "STAFF NAME(S)" and row[1] == "Sam Visitor; Chris Companion" and row[2] == "07700 900010; 07700 900011"
    assert row[-1] == "Sam Visitor"
    assert get(link)[:2] == (404, b"Not Found")  # once only
    # Only a hash of the secret is kept, and the file is gone once fetched.
    assert ws.runtime.store.read().db.conn.execute("SELECT COUNT(*) FROM downloads").fetchone()[0] == 0


def test_an_unfetched_link_expires(chat):
    ws = chat
    seed_visit(ws)
    ws.runtime.chat_app.public_url = f"http://127.0.0.1:{ws.server.port}"
    answer = ws.driver.command(HEAD, "/visits", "report 2026-27")
    links = [w for w in answer.text.split() if "/downloads/" in w]
    assert len(links) == 2  # the HTML report and its CSV
    ws.clock.set(ws.clock() + timedelta(minutes=16))
    assert [get(link)[0] for link in links] == [404, 404]


def test_without_a_public_address_chat_says_what_to_do_and_refusals_stay_refusals(chat):
    ws = chat
    seed_visit(ws)
    answer = ws.driver.command(DSL, "/visits", "export 2026-11-23")
    assert "VISITSAFE_PUBLIC_URL" in answer.text and "visitsafe export --from" in answer.text
    answer = ws.driver.command(REQUESTER, "/visits", "export 2026-11-23")
    assert "Only the office, the DSL and the head can export the safety log." in answer.text
    assert ws.runtime.store.read().db.conn.execute("SELECT COUNT(*) FROM downloads").fetchone()[0] == 0
