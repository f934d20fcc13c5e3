"""The benchmark school: the demo's people, channels and policy (bot/demo.py), shared by every script."""
from __future__ import annotations

from typing import Any

from bot.demo import DEMO_POLICY

DSL, HEAD, OFFICE = "U01", "U02", "U03"
OFFICE_CHANNEL, SAFEGUARDING_CHANNEL = DEMO_POLICY["channels"]["office"], DEMO_POLICY["channels"]["safeguarding"]


def policy(**changes: Any) -> dict[str, Any]:
    """The demo's policy for "Benchmark Primary", with some settings changed (None removes one)."""
    merged = {**DEMO_POLICY, "school": "Benchmark Primary", **changes}
    return {key: value for key, value in merged.items() if value is not None}
