"""What every fault test ends with: each alert delivered exactly once, in ladder order, none lost."""
from __future__ import annotations

from collections import Counter

from bot.simslack import SimSlack

# The words that open each kind of alert, in the order the ladder sends them.
LADDER_WORDS = ("you were due back", "OVERDUE", "NOT RETURNED, NOT REACHED", "CONTACT THE POLICE", "STILL NOT CONFIRMED SAFE")
EMERGENCY_WORDS = ("SOS", "SILENT ALARM")


def _is_alert(text: str) -> bool:
    return any(word in text for word in (*LADDER_WORDS, *EMERGENCY_WORDS))


is_alert = _is_alert  # for tests/platforms.py, which reads alerts on either platform


def delivered_alerts(sim: SimSlack, visit_id: int | None = None) -> list[tuple[str, str]]:
    """(destination, text) of every alert Slack accepted, oldest first (optionally about one visit)."""
    return [
        (call.params["channel"], call.params["text"])
        for call in sim.calls_to("chat.postMessage")
        if not call.failed and not call.error and _is_alert(call.params.get("text") or "")
        and (visit_id is None or f"visit #{visit_id}" in call.params["text"].lower())
    ]


def rank(text: str) -> int:
    """Where an alert stands on the ladder (emergencies rank with the first step)."""
    return next((i for i, word in enumerate(LADDER_WORDS) if word in text), 0)


def assert_each_once_in_order(sim: SimSlack, expected: dict[str, int], visit_id: int | None = None) -> list[tuple[str, str]]:
    """Every alert reached Slack exactly once, each destination got `expected[destination]` alerts
    (none lost), and each destination received them in ladder order. Returns the alerts."""
    return check_each_once_in_order(delivered_alerts(sim, visit_id), expected)


def check_each_once_in_order(alerts: list[tuple[str, str]], expected: dict[str, int]) -> list[tuple[str, str]]:
    """(destination, text) alerts as delivered: none twice, `expected` per destination, each in ladder order."""
    twice = {key: n for key, n in Counter(alerts).items() if n > 1}
    assert not twice, f"alerts delivered more than once: {twice}"
    got = Counter(destination for destination, _ in alerts)
    assert dict(got) == expected, f"alerts per destination: got {dict(got)}, expected {expected}"
    for destination in got:
        ranks = [rank(text) for to, text in alerts if to == destination]
        assert ranks == sorted(ranks), f"{destination} got alerts out of ladder order: {ranks}"
    return alerts
