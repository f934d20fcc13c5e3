"""The five seed policies in examples/policies/ load and stay faithful to the schools' texts;
a broken policy file gives one line naming the bad key."""
from __future__ import annotations

import copy
import re
from datetime import time, timedelta
from pathlib import Path

import pytest
import yaml

from flows.policy import AUDIENCES, Policy, PolicyError, Role, load_policy, parse_policy

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "policies"
FILES = sorted(EXAMPLES.glob("*.yml"))
SCHOOLS = {
    "botley-school.yml",
    "hampton-infant-school.yml",
    "harton-academy.yml",
    "st-patricks-catholic-college.yml",
    "tees-valley-education-trust.yml",
}


def policy(name: str) -> Policy:
    return load_policy(EXAMPLES / name, example=True)


def tiers(p: Policy) -> dict[timedelta, set[str]]:
    return {tier.after: set(tier.notify) for tier in p.escalation}


# --- every example -----------------------------------------------------------


def test_there_are_exactly_the_five_seed_policies():
    assert len(FILES) == 5
    assert {f.name for f in FILES} == SCHOOLS


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_loads(path: Path):
    p = load_policy(path, example=True)
    assert p.school
    assert p.timezone == "Europe/London"
    assert p.sweep_interval == timedelta(seconds=15)
    assert p.safety_checklist and all(item.strip() for item in p.safety_checklist)
    # The ladder starts with the visitor and ends with someone who can call the police.
    assert p.escalation[0].after == timedelta(0)
    assert p.escalation[0].notify == ["visitor"]
    assert {"head", "dsl"} & set(p.escalation[-1].notify)
    # Every approving role has someone in it (with placeholder ids).
    rules = [p.approvals, p.approvals.senior_leader_own_visit, p.approvals.emergency]
    for rule in filter(None, rules):
        for slot in rule.slots():
            for role in slot:
                assert p.roles.holders(role), f"{path.name}: no one holds {role.value}"
    # Every role named in the ladder has someone in it.
    for tier in p.escalation:
        for audience in tier.notify:
            if audience in {r.value for r in Role}:
                assert p.roles.holders(audience), f"{path.name}: no one holds {audience}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_uses_obvious_placeholders_and_no_tokens(path: Path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"xox[a-z]-", text), "looks like a Slack token"
    p = load_policy(path, example=True)
    assert p.channels.office.endswith("_CHANGE_ME")
    assert p.channels.safeguarding.endswith("_CHANGE_ME")
    for role in Role:
        for user in p.roles.holders(role):
            assert user.startswith("U_") and user.endswith("_CHANGE_ME"), user


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_says_which_policy_it_implements(path: Path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# VisitSafe policy:")


# --- per school ----------------------------------------------------------------


def test_botley():
    p = policy("botley-school.yml")
    # "approved by the Headteacher and Designated Safeguarding Lead"
    assert p.approvals.all_of == [Role.head, Role.dsl]
    assert p.approvals.any_of is None
    assert p.approvals.slots() == [(Role.head,), (Role.dsl,)]
    assert p.approvals.emergency is None
    # "generally ... conducted in pairs"
    assert p.pairs_required is True
    # "Do not schedule visits during the evening."
    assert p.outside_hours == "refuse"
    assert p.visiting_hours.end <= time(18, 0)
    assert p.checkin_interval is None
    checklist = " ".join(p.safety_checklist).lower()
    for words in ("code word", "upstairs", "reverse", "identification", "charged"):
        assert words in checklist


def test_st_patricks():
    p = policy("st-patricks-catholic-college.yml")
    # "AUTHORISED BY THE HEADTEACHER OR OTHER SENIOR LEADERS"
    assert p.approvals.any_of == [Role.head, Role.senior_leader]
    assert p.approvals.all_of is None
    # "ALL HOME VISITS CONDUCTED BY SENIOR LEADERS MUST BE AUTHORISED BY THE HEADTEACHER"
    own = p.approvals.senior_leader_own_visit
    assert own is not None and own.all_of == [Role.head]
    assert own.slots() == [(Role.head,)]
    assert p.approvals.emergency is None
    assert p.pairs_required is True
    assert p.checkin_interval is None
    checklist = " ".join(p.safety_checklist).lower()
    for words in ("lanyard", "upstairs", "mobile phone", "999"):
        assert words in checklist


def test_harton():
    p = policy("harton-academy.yml")
    # "every 30 minutes/at the end of the home visit(s)"
    assert p.checkin_interval == timedelta(minutes=30)
    # "with 2 members of staff, where appropriate"
    assert p.pairs_required is False
    # No approver named: the line manager (team_leader) or the DSL.
    assert p.approvals.any_of is not None
    assert Role.dsl in p.approvals.any_of
    assert p.approvals.emergency is not None and p.approvals.emergency.any_of == [Role.dsl]
    ladder = tiers(p)
    # "Office staff/line manager should attempt to make contact", then the DSL, then police.
    office_at = next(t.after for t in p.escalation if "office" in t.notify)
    dsl_at = next(t.after for t in p.escalation if "dsl" in t.notify)
    assert "team_leader" in ladder[office_at]
    assert office_at < dsl_at
    checklist = " ".join(p.safety_checklist).lower()
    for words in ("code word", "30 minutes", "animals", "reverse"):
        assert words in checklist
    # Harton's text does not say "do not go upstairs": its checklist must not invent it.
    assert "upstairs" not in checklist


def test_hampton():
    p = policy("hampton-infant-school.yml")
    # The Head of School plans visits.
    assert p.approvals.slots() == [(Role.head,)]
    # "Staff are not permitted to undertake home visits on their own."
    assert p.pairs_required is True
    # "should not occur without prior approval of the HoS"
    assert p.commute_visits == "head_approval"
    ladder = tiers(p)
    # "not be able to return within 15 minutes ... they must contact the Office"
    assert ladder[timedelta(minutes=15)] == {"visitor"}
    # "The office will make contact ... within half an hour of the schedule return time."
    assert "office" in ladder[timedelta(minutes=30)]
    assert all("office" not in who for at, who in ladder.items() if at < timedelta(minutes=30))
    # worker, location, school, then police: school and police tiers come after the office.
    later = [who for at, who in ladder.items() if at > timedelta(minutes=30)]
    assert len(later) >= 2 and "head" in later[0] and "head" in later[-1]
    # Family support worker with a confidential ELT contact.
    assert p.roles.family_support and p.roles.elt
    checklist = " ".join(p.safety_checklist).lower()
    for words in ("badge", "exit", "alleys", "phone"):
        assert words in checklist


def test_tees_valley():
    p = policy("tees-valley-education-trust.yml")
    # "recorded on ... CPOMS within 24 hours of the contact"
    assert p.record_deadline == timedelta(hours=24)
    # "refer back to Team Leader or Head Teacher/Head of Academy"
    assert p.approvals.any_of is not None
    assert set(p.approvals.any_of) == {Role.team_leader, Role.head}
    # Pairs only "if there is very little information regarding a family" (a risk rule).
    assert p.pairs_required is False
    # "the Academy Office to phone the member of staff and alert the Head Teacher"
    first_office = next(t for t in p.escalation if "office" in t.notify)
    assert "head" in first_office.notify
    assert p.checkin_interval is None
    checklist = " ".join(p.safety_checklist).lower()
    for words in ("switched on", "upstairs", "personal alarm", "drive away"):
        assert words in checklist


@pytest.mark.parametrize(
    "name", ["botley-school.yml", "harton-academy.yml", "st-patricks-catholic-college.yml", "hampton-infant-school.yml"]
)
def test_no_check_ins_unless_the_text_asks(name: str):
    expected = timedelta(minutes=30) if name == "harton-academy.yml" else None
    assert policy(name).checkin_interval == expected


# --- loader error messages -----------------------------------------------------

MINIMAL = {
    "school": "Test School",
    "channels": {"office": "C0OFFICE1", "safeguarding": "G0SAFE1"},
    "roles": {"head": ["U0HEAD1"], "dsl": ["U0DSL1", "W0DEPUTY1"]},
    "approvals": {"all_of": ["head", "dsl"]},
    "escalation": [
        {"after": "0m", "notify": ["visitor"]},
        {"after": "15m", "notify": ["office"]},
        {"after": "30m", "notify": ["safeguarding", "dsl"]},
    ],
}


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "policy.yml"
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def broken(tmp_path: Path, change) -> str:
    data = copy.deepcopy(MINIMAL)
    change(data)
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, data))
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(str(tmp_path / "policy.yml"))
    return message


def test_minimal_policy_loads(tmp_path: Path):
    p = load_policy(write(tmp_path, MINIMAL))
    assert p.school == "Test School"
    assert set(AUDIENCES) >= {a for t in p.escalation for a in t.notify}


def test_bad_duration_names_the_tier(tmp_path: Path):
    message = broken(tmp_path, lambda d: d["escalation"][1].update(after="soon"))
    assert "escalation tier 2, after:" in message
    assert "'soon' is not a duration" in message


def test_missing_channels(tmp_path: Path):
    message = broken(tmp_path, lambda d: d.pop("channels"))
    assert "channels: is required" in message


def test_unknown_key_is_named(tmp_path: Path):
    message = broken(tmp_path, lambda d: d.update(chekin_interval="30m"))
    assert "chekin_interval" in message
    assert "not a known setting" in message


def test_unknown_nested_key_is_named(tmp_path: Path):
    message = broken(tmp_path, lambda d: d["channels"].update(staffroom="C0STAFF1"))
    assert "channels.staffroom" in message


def test_unknown_audience(tmp_path: Path):
    message = broken(tmp_path, lambda d: d["escalation"][2]["notify"].append("police"))
    assert "escalation tier 3, notify:" in message
    assert "unknown audience 'police'" in message


def test_tiers_out_of_order(tmp_path: Path):
    message = broken(tmp_path, lambda d: d["escalation"][2].update(after="10m"))
    assert "escalation:" in message
    assert "in order" in message


def test_bad_timezone(tmp_path: Path):
    message = broken(tmp_path, lambda d: d.update(timezone="Europe/Hogwarts"))
    assert "timezone" in message
    assert "Europe/Hogwarts" in message


def test_unknown_role_in_approvals(tmp_path: Path):
    message = broken(tmp_path, lambda d: d["approvals"].update(all_of=["head", "caretaker"]))
    assert "approvals.all_of item 2:" in message


def test_visiting_hours_backwards(tmp_path: Path):
    message = broken(tmp_path, lambda d: d.update(visiting_hours={"start": "17:30", "end": "08:00"}))
    assert "visiting_hours" in message
    assert "start must be before end" in message


@pytest.mark.parametrize("text", ["- just\n- a list\n", "just a sentence\n", ""])
def test_non_mapping_file(tmp_path: Path, text: str):
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    assert "must be a YAML mapping" in message


def test_invalid_yaml_gives_the_line(tmp_path: Path):
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, "school: Test\nchannels: [unclosed\n"))
    message = str(caught.value)
    assert "\n" not in message
    assert "not valid YAML at line" in message


def test_missing_file(tmp_path: Path):
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "nowhere.yml")
    assert "no such policy file" in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the reference stays in step with the model --------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "policy-file.md"


def test_reference_example_loads(tmp_path: Path):
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"## A complete annotated example.*?```yaml\n(.*?)```", text, re.S)
    assert block, "docs/policy-file.md lost its complete example"
    p = load_policy(write(tmp_path, block.group(1)), example=True)
    # The complete example sets every key the model has.
    assert set(yaml.safe_load(block.group(1))) == set(Policy.model_fields)
    assert p.staff


def test_reference_documents_every_key():
    text = DOC.read_text(encoding="utf-8")
    for key in Policy.model_fields:
        assert f"`{key}`" in text, f"docs/policy-file.md does not document {key}"
    for role in Role:
        assert f"`{role.value}`" in text
    for audience in AUDIENCES:
        assert f"`{audience}`" in text


def test_hampton_board_goes_to_the_office_and_the_head_of_school():
    policy = load_policy(EXAMPLES / "hampton-infant-school.yml", example=True)
    assert policy.board == ["office", "head"]


# --- after the visit: each school's card sequence, referral and recording deadline (issue 14) ---

# (first planned no-answer, second planned no-answer, an unplanned no-answer): the card each asks for;
# then who the second no-answer in a row is referred to (roles), and the CPOMS deadline.
AFTER_VISIT = {
    "botley-school.yml": (("appointment", "message", "contact"), {"head"}, timedelta(hours=24)),
    "hampton-infant-school.yml": (("appointment", "message", "contact"), {"head"}, timedelta(hours=24)),
    "harton-academy.yml": (("contact", "contact", "contact"), {"team_leader", "head"}, timedelta(hours=24)),
    "st-patricks-catholic-college.yml": (("appointment", "message", "contact"), {"head"}, timedelta(hours=24)),
    "tees-valley-education-trust.yml": (("appointment", "message", "contact"), {"team_leader", "head"}, timedelta(hours=24)),
}


@pytest.mark.parametrize("name", sorted(AFTER_VISIT))
def test_example_drives_its_own_card_sequence_referral_and_record_deadline(name: str):
    from flows.aftervisit import no_answer, record_timers, referral
    from tests.conftest import MONDAY_9AM
    from tests.factories import make_details, make_visit

    p = policy(name)
    (first, second, unplanned), refer_roles, deadline = AFTER_VISIT[name]
    planned = make_visit(p, details=make_details(planned=True), id=7)
    once = no_answer(planned, [], p)
    twice = no_answer(planned, [True], p)
    assert (once.card, once.refer) == (first, False)
    assert (twice.card, twice.number, twice.refer) == (second, 2, True)
    assert no_answer(planned, [True, True, True], p).card == second  # the sequence's last card once it runs out
    surprise = make_visit(p, details=make_details(planned=False), id=8)
    assert no_answer(surprise, [], p).card == unplanned
    holders = {user for role in refer_roles for user in p.roles.holders(role)}
    assert {m.to for m in referral(planned, twice, second, "U_VISITOR", MONDAY_9AM, p)} == holders
    timers = record_timers(MONDAY_9AM, p)
    assert p.record_deadline == deadline
    assert (timers.remind_at, timers.due_at) == (MONDAY_9AM + deadline / 2, MONDAY_9AM + deadline)


def test_a_policy_with_nobody_to_refer_to_or_an_unknown_card_is_refused():
    raw = yaml.safe_load((EXAMPLES / "botley-school.yml").read_text())
    nobody = copy.deepcopy(raw)
    nobody["nobody_home"]["refer_to"] = ["team_leader"]
    with pytest.raises(PolicyError, match=r"nobody_home.refer_to: none of team_leader holds anybody"):
        parse_policy(nobody, example=True)
    card = copy.deepcopy(raw)
    card["nobody_home"]["planned_cards"] = ["postcard"]
    with pytest.raises(PolicyError, match=r"nobody_home.planned_cards item 1: Input should be 'contact', 'appointment' or 'message'"):
        parse_policy(card, example=True)
    typo = copy.deepcopy(raw)
    typo["nobody_home"]["refer_afterr"] = 3
    with pytest.raises(PolicyError, match=r"did you mean 'refer_after'"):
        parse_policy(typo, example=True)
