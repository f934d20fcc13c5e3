"""The board built from a projection of its columns says exactly what the board built from whole visits said.

The expected texts were captured from the board before issue 12 (whole `Visit`s for every visit of the day),
for people who see everything, an approver with decisions waiting, and members of staff who see only their own.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.clock import FixedClock
from commands import board
from commands.context import Ctx
from flows.visit import Decision, State, Watch
from storage.store import Store
from tests.conftest import COMPANION, DEPUTY, DSL, HEAD, MONDAY_9AM, OFFICE, REQUESTER, SENIOR
from tests.factories import make_answers, make_details, make_visit

NOW = MONDAY_9AM.replace(hour=11, minute=5)


def _school(tmp_path, policy):
    """A day with a visit in every state, a round, an emergency signed in under, a silent alarm confirmed safe,
    yesterday's live visit, yesterday's and tomorrow's requests, and a decision already given."""
    store = Store(tmp_path / "board.db", policy)
    at = lambda h, m=0, day=0: MONDAY_9AM.replace(hour=h, minute=m) + timedelta(days=day)  # noqa: E731
    plan = [
        ("U20", State.requested, at(13), {}),
        ("U21", State.approved, at(14, 30), {}),
        ("U22", State.declined, at(10), {"decisions": (Decision("dsl", DSL, False, at(8), "Meet at school"),)}),
        ("U23", State.out, at(10), {"departed_at": at(10), "expected_return": at(11, 30)}),
        ("U24", State.overdue, at(9, 30), {"departed_at": at(9, 30), "expected_return": at(10, 15)}),
        ("U25", State.returned, at(8, 30), {"departed_at": at(8, 30), "returned_at": at(9, 10)}),
        ("U26", State.returned, at(8, 45), {"departed_at": at(8, 45), "returned_at": at(9, 20), "returned_home": True}),
        (REQUESTER, State.emergency, at(9), {"departed_at": at(9), "expected_return": at(9, 45),
                                             "watch": Watch(emergency="sos", signed_in_at=at(10, 40), signed_in_by=REQUESTER)}),
        ("U27", State.returned, at(9, 15), {"departed_at": at(9, 15), "returned_at": at(10, 5),
                                            "watch": Watch(emergency="duress", safe_by=DSL, safe_note="ok", signed_in_at=at(10))}),
        ("U28", State.out, at(16, day=-1), {"departed_at": at(16, day=-1), "expected_return": at(11, 0)}),
        ("U29", State.requested, at(10, day=1), {}),
        ("U30", State.requested, at(15), {"decisions": (Decision("dsl", DEPUTY, True, at(8)),)}),
        ("U31", State.requested, at(11), {"decisions": (Decision("head", HEAD, True, at(8)),)}),
        ("U32", State.cancelled, at(12), {}),
        (COMPANION, State.approved, at(15, 30), {"answers": make_answers(companions=(REQUESTER,))}),
        ("U33", State.returned, at(10, day=-2), {"departed_at": at(10, day=-2), "returned_at": at(11, day=-2)}),
    ]
    with store.transaction() as tx:
        for n, (who, state, start, extra) in enumerate(plan):
            details = make_details(pupil_ref=f"P{n:02d}", date=start.date().isoformat(), start_time=f"{start:%H:%M}")
            answers = extra.pop("answers", None)
            visit = make_visit(policy, requester=who, details=details, answers=answers, now=start - timedelta(days=1))
            visit = replace(visit, state=state, start_at=start, **extra)
            tx.save_visit(tx.add_visit(visit, NOW), NOW)
    return Ctx(store, policy, FixedClock(NOW))


# Everyone who oversees sees every visit of the day (and yesterday's still out), live ones first.
EVERYONE = (
    "*Home visits today, Mon 23 Nov* (as of 11:05)\n"
    ":red_circle: #10 <@U28>, <@U11>: *OVERDUE* by 5 min, due back 11:00\n"
    ":red_circle: #8 <@U10>, <@U11>: *OVERDUE* by 80 min, due back 09:45\n"
    ":red_circle: #5 <@U24>, <@U11>: *OVERDUE* by 50 min, due back 10:15\n"
    ":large_blue_circle: #4 <@U23>, <@U11>: out, due back 11:30\n"
    ":white_check_mark: #6 <@U25>, <@U11>: back at 09:10\n"
    ":white_check_mark: #7 <@U26>, <@U11>: gone home at 09:20\n"
    ":white_check_mark: #9 <@U27>, <@U11>: back at 10:05\n"
    ":white_circle: #3 <@U22>, <@U11>: declined, planned 10:00\n"
    ":white_circle: #13 <@U31>, <@U11>: waiting for approval, planned 11:00\n"
    ":white_circle: #14 <@U32>, <@U11>: cancelled, planned 12:00\n"
    ":white_circle: #1 <@U20>, <@U11>: waiting for approval, planned 13:00\n"
    ":white_circle: #2 <@U21>, <@U11>: approved, planned 14:30\n"
    ":white_circle: #12 <@U30>, <@U11>: waiting for approval, planned 15:00\n"
    ":white_circle: #15 <@U11>, <@U10>: approved, planned 15:30"
)
DM = "see my DM to Approve or Decline"


def waiting(*lines: str) -> str:
    return "\n".join([f"*Waiting for your decision* ({len(lines)})", *lines])


BOARDS = {
    OFFICE: EVERYONE,
    # The head has #1, #12 (the DSL slot filled by the deputy) and tomorrow's #11 to decide; #13 has the head's decision.
    HEAD: EVERYONE + "\n" + waiting(
        f":hourglass: #1 from <@U20>, planned Mon 23 Nov 13:00: {DM}",
        f":hourglass: #12 from <@U30>, planned Mon 23 Nov 15:00: {DM}",
        f":hourglass: #11 from <@U29>, planned Tue 24 Nov 10:00: {DM}",
    ),
    # Either DSL may fill the DSL slot, but not #12's, which the deputy filled.
    DSL: EVERYONE + "\n" + waiting(
        f":hourglass: #13 from <@U31>, planned Mon 23 Nov 11:00: {DM}",
        f":hourglass: #1 from <@U20>, planned Mon 23 Nov 13:00: {DM}",
        f":hourglass: #11 from <@U29>, planned Tue 24 Nov 10:00: {DM}",
    ),
    SENIOR: (
        "You have no home visits today."
    ),
    REQUESTER: (
        "*Home visits today, Mon 23 Nov* (as of 11:05)\n"
        ":white_check_mark: #8 <@U10>, <@U11>: back at 10:40 (P07)\n"
        ":white_circle: #15 <@U11>, <@U10>: approved, planned 15:30 (P14)"
    ),
    COMPANION: (
        "*Home visits today, Mon 23 Nov* (as of 11:05)\n"
        ":red_circle: #10 <@U28>, <@U11>: *OVERDUE* by 5 min, due back 11:00 (P09)\n"
        ":red_circle: #5 <@U24>, <@U11>: *OVERDUE* by 50 min, due back 10:15 (P04)\n"
        ":large_blue_circle: #4 <@U23>, <@U11>: out, due back 11:30 (P03)\n"
        ":white_check_mark: #6 <@U25>, <@U11>: back at 09:10 (P05)\n"
        ":white_check_mark: #7 <@U26>, <@U11>: gone home at 09:20 (P06)\n"
        ":white_check_mark: #8 <@U10>, <@U11>: back at 10:40 (P07)\n"
        ":white_check_mark: #9 <@U27>, <@U11>: back at 10:00 (P08)\n"
        ":white_circle: #3 <@U22>, <@U11>: declined, planned 10:00 (P02)\n"
        ":white_circle: #13 <@U31>, <@U11>: waiting for approval, planned 11:00 (P12)\n"
        ":white_circle: #14 <@U32>, <@U11>: cancelled, planned 12:00 (P13)\n"
        ":white_circle: #1 <@U20>, <@U11>: waiting for approval, planned 13:00 (P00)\n"
        ":white_circle: #2 <@U21>, <@U11>: approved, planned 14:30 (P01)\n"
        ":white_circle: #12 <@U30>, <@U11>: waiting for approval, planned 15:00 (P11)\n"
        ":white_circle: #15 <@U11>, <@U10>: approved, planned 15:30 (P14)"
    ),
    "U24": (
        "*Home visits today, Mon 23 Nov* (as of 11:05)\n"
        ":red_circle: #5 <@U24>, <@U11>: *OVERDUE* by 50 min, due back 10:15 (P04)"
    ),
    "U99": (
        "You have no home visits today."
    ),
}
BOARDS[DEPUTY] = BOARDS[DSL]


@pytest.mark.parametrize("user", list(BOARDS))
def test_board_says_what_the_whole_visit_board_said(tmp_path, policy, user):
    assert board.today(_school(tmp_path, policy), user).text == BOARDS[user]


def test_a_day_too_big_for_one_message_lists_every_visit_out_and_counts_the_rest(tmp_path, policy, monkeypatch):
    monkeypatch.setattr(board, "BOARD_OTHERS", 3)
    lines = board.today(_school(tmp_path, policy), OFFICE).text.split("\n")
    assert lines[:8] == EVERYONE.split("\n")[:8]  # the title, all four visits out, then the first three others by start time
    assert lines[8:] == ["…and 7 more today, not listed (2 approved, 1 cancelled, 1 declined, 3 waiting for approval)."
                         " Every visit out now is listed above."]
