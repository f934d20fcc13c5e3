"""What every benchmark shares: the demo's school (people, channels, policy) and nearest-rank percentiles."""
from __future__ import annotations

import math
from typing import Any

from bot.demo import DEMO_POLICY

DSL, HEAD, OFFICE = "U01", "U02", "U03"
OFFICE_CHANNEL, SAFEGUARDING_CHANNEL = DEMO_POLICY["channels"]["office"], DEMO_POLICY["channels"]["safeguarding"]


def policy(**changes: Any) -> dict[str, Any]:
    """The demo's policy for "Benchmark Primary", with some settings changed (None removes one)."""
    merged = {**DEMO_POLICY, "school": "Benchmark Primary", **changes}
    return {key: value for key, value in merged.items() if value is not None}


def nearest_rank(ordered: list[float], pct: float) -> float:
    """The nearest-rank percentile of an ascending list."""
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]
