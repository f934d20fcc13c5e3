"""Issue 14 item 10: a request cancelled (or expired) after one approval rewrites every approver's DM, on Slack and
Google Chat; the companions are told of a cancellation."""
from __future__ import annotations

from tests.test_both_platforms import request_visit, site  # noqa: F401 - site: the test school on each platform


def request_dm(site, approver):
    [message] = [m for m in site.messages(approver) if "home visit" in m.text.lower() and "AB123" in m.text]
    return message


def test_cancelled_after_one_approval_every_approver_sees_it_and_the_companion_is_told(site):
    request_visit(site)
    site.click("dsl", request_dm(site, "dsl"), "Approve")
    assert "[Approve]" in request_dm(site, "head").text  # the head still has to decide
    [receipt] = [m for m in site.messages("requester") if "[Cancel this request]" in m.text]
    answer = site.click("requester", receipt, "Cancel this request")
    assert "the approvers and your companions have been told" in answer.text
    for approver in ("dsl", "deputy", "head"):
        now_reads = request_dm(site, approver).text
        assert "cancelled" in now_reads and "[Approve]" not in now_reads and "[Decline]" not in now_reads, (approver, now_reads)
    [told] = [m for m in site.messages("companion") if "cancelled" in m.text]
    assert "@Sam Visitor cancelled the home visit for AB123 on Mon 23 Nov 10:00 that you were going on." in told.text


def test_expired_after_one_approval_leaves_no_approve_button(site):
    request_visit(site)
    site.click("dsl", request_dm(site, "dsl"), "Approve")
    site.at(10, 1)  # past its start, undecided by the head: it expires
    for approver in ("dsl", "deputy", "head"):
        now_reads = request_dm(site, approver).text
        assert "expired" in now_reads and "[Approve]" not in now_reads, (approver, now_reads)
