"""Who an audience name in the policy (office, safeguarding, visitor, a role...) reaches for one visit."""
from __future__ import annotations

from flows.policy import Policy, Role
from flows.visit import Visit


def destinations(audience: str, visit: Visit, policy: Policy) -> list[str]:
    """The channel or user ids an audience name sends to (roles never include the visiting team)."""
    if audience == "visitor":
        return [visit.requester]
    if audience == "companions":
        return list(visit.companions)
    if audience == "office":
        return [policy.channels.office]
    if audience == "safeguarding":
        return [policy.channels.safeguarding]
    # A drill's "visitor" is the DSL who runs it: as a DSL they must be reached too, or the drill tests less.
    return [u for u in policy.roles.holders(Role(audience)) if u not in visit.team or visit.drill]
