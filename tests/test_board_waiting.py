"""The head's board lists the soonest requests waiting for their decision and counts the rest, as it does the day's
other visits: a chat message cannot hold hundreds of them (issue 12), and each stays decidable from its request DM."""
from __future__ import annotations

from tests.conftest import DSL, HEAD, visit_form
from tests.test_e2e_slack import request_visit


def board(ws, who: str) -> str:
    """The whole board as `who` sees it (every section of the reply: its plain text is cut short for notifications)."""
    body = ws.driver.command(who, "/visits").body
    return "\n".join(b["text"]["text"] for b in body["blocks"] if b.get("type") == "section")


def waiting_part(text: str) -> list[str]:
    """The board's lines from "Waiting for your decision" on."""
    lines = text.split("\n")
    return lines[[i for i, line in enumerate(lines) if "Waiting for your decision" in line][0]:]


def test_the_head_sees_the_twenty_soonest_of_25_waiting_and_how_many_more_and_can_still_decide_any(workspace):
    ws = workspace
    # 25 requests today, 10:00 to 14:00 every 10 minutes, sent latest first: the board lists them soonest first.
    starts = [f"{10 + m // 60}:{m % 60:02d}" for m in range(0, 250, 10)][::-1]
    for start in starts:
        answer = request_visit(ws, details=visit_form(start_time=start))
        assert answer.body["response_action"] == "clear", answer.body
    shown = waiting_part(board(ws, HEAD))
    assert shown[0] == "*Waiting for your decision* (25)"
    listed = shown[1:-1]
    assert len(listed) == 20
    soonest = sorted(starts)[:20]  # 10:00 to 13:10
    for line, start in zip(listed, soonest):
        assert f"planned Mon 23 Nov {start}:" in line, (line, start)
        assert "see my DM to Approve or Decline" in line
    assert shown[-1] == "…and 5 more waiting for your decision, not listed: open each from its request DM."
    # The latest request (14:00), not on the board, is still approved from its DM; the count goes down.
    [latest] = [m for m in ws.dms(HEAD) if "Home visit request" in m.plain() or "asks to make a home visit" in m.plain()][:1]
    assert "14:00" in latest.plain(), latest.plain()
    ws.driver.click(HEAD, latest, "Approve")
    shown = waiting_part(board(ws, HEAD))
    assert shown[0] == "*Waiting for your decision* (24)"
    assert shown[-1] == "…and 4 more waiting for your decision, not listed: open each from its request DM."
    # The DSL's own list is untouched by the head's decision.
    assert waiting_part(board(ws, DSL))[0] == "*Waiting for your decision* (25)"


def test_twenty_or_fewer_waiting_are_all_listed_with_no_more_line(workspace):
    ws = workspace
    for start in ("10:00", "11:00"):
        request_visit(ws, details=visit_form(start_time=start))
    shown = waiting_part(board(ws, HEAD))
    assert shown[0] == "*Waiting for your decision* (2)" and len(shown) == 3
    assert not any("more waiting" in line for line in shown)
