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
