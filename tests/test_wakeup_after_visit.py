"""The wake-up knows the after-the-visit timers: the outcome reminder, the CPOMS reminder and deadline, and a referral's
follow-up each go at their moment to the second (on the injected clock), not at the next periodic tick up to 15 s later."""
from __future__ import annotations

from tests.test_both_platforms import site  # noqa: F401 - the fixture: the test school on each platform
from tests.test_e2e_dsl_side import click_in_reply
from tests.test_e2e_outcomes import in_dms, prompt, visit_and_back
from tests.test_wakeup import Sleep


def woken_at(site) -> str:
    """Run the wake-up once (planning, sleeping on the test's clock, ticking); the moment it ticked."""
    wake = site.runtime.wakeup
    wake.wait = Sleep(site.clock)
    assert wake.run_once() is True
    return site.clock().strftime("%a %H:%M:%S")


def test_the_outcome_reminder_and_the_cpoms_reminder_and_deadline_go_on_the_second(site):
    visit_and_back(site, 1)  # back at 10:40: the reminder at 11:40, CPOMS by 10:40 tomorrow (reminded at 22:40)
    site.tick()
    assert woken_at(site) == "Mon 11:40:00"
    assert in_dms(site, "requester", "has no outcome yet")
    site.click("requester", prompt(site), "No concerns")
    assert woken_at(site) == "Mon 22:40:00"
    assert in_dms(site, "requester", "is not recorded on CPOMS yet")
    assert woken_at(site) == "Tue 10:40:00"
    for dsl in ("dsl", "deputy"):
        assert in_dms(site, dsl, "was not recorded on CPOMS by its deadline (10:40)")


def test_a_given_outcome_and_a_recorded_visit_leave_nothing_to_wake_for(site):
    visit_and_back(site, 1)
    site.click("requester", prompt(site), "No concerns")
    site.click("requester", in_dms(site, "requester", "on CPOMS by")[0], "Recorded")
    site.tick()
    assert site.runtime.wakeup.replan() is None


def test_a_referrals_follow_up_goes_at_its_moment(site):
    visit_and_back(site, 1)
    site.click("requester", prompt(site), "No concerns")
    site.click("requester", in_dms(site, "requester", "on CPOMS by")[0], "Recorded")
    click_in_reply(site, "dsl", "/visits", "record 1", "Log a referral")
    ok = site.submit_form("dsl", {"agency": "Early Help", "referred_on": "2026-11-23", "consent": "yes", "follow_up_on": "2026-11-25"})
    assert ok.status == 200 and not ok.text, ok.text
    site.tick()
    assert woken_at(site) == "Wed 08:00:00"
    [follow_up] = in_dms(site, "dsl", "Follow up your referral today")
    assert "to Early Help after visit #1" in follow_up.text
