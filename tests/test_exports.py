"""Issue 14 items 7, 8, 9, 11: the safety log export, the school calendar, the governors' report, retention."""
from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta, timezone

import icalendar
import pytest

from bot.cli import main
from commands import exports
from flows import exports as ex
from flows.visit import State
from tests.conftest import (
    COMPANION, DSL, HEAD, OFFICE, OFFICE_CHANNEL, REQUESTER, SAFEGUARDING_CHANNEL, SENIOR, USERS, visit_form,
)
from tests.factories import make_details, make_visit
from tests.test_e2e_safety import answer_checkin, at, out_at_ten
from tests.test_e2e_slack import approval_dm, request_visit

# Everything that identifies a family or a member of staff in the test school's visits.
PERSONAL = ("AB123", "Example Road", "OX2 9AA", "01632 960123", "AB12 CDE", "Ford Focus", *(u["name"] for u in USERS.values()),
            *(u["phone"] for u in USERS.values() if "phone" in u))


def rows_of(body: bytes) -> list[list[str]]:
    """A CSV file as a spreadsheet reads it (the byte-order mark is Excel's hint, not data)."""
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def audits(ws, action):
    rows = ws.runtime.store.read().db.conn.execute("SELECT actor, visit_id, detail FROM audit WHERE action = ? ORDER BY id", [action]).fetchall()
    return [(actor, visit_id, json.loads(detail)) for actor, visit_id, detail in rows]


def overdue_then_back(ws):
    """Visit #1 out 10:00-10:45, overdue (the ladder's first alert at 10:45), back at 11:10: 25 minutes to confirmation."""
    out_at_ten(ws)
    at(ws, 10, 30)
    answer_checkin(ws)
    at(ws, 10, 45)
    at(ws, 11, 0)
    ws.clock.set(ws.clock().replace(hour=11, minute=10))
    assert "visit #1 is signed in at 11:10" in ws.driver.command(REQUESTER, "/back").text
    ws.runtime.tick()


# ----- item 7: the safety log ---------------------------------------------------------------------------------

def test_office_exports_the_safety_log_as_a_private_csv_with_appendix_a_columns(workspace):
    ws = workspace
    overdue_then_back(ws)

    answer = ws.driver.command(OFFICE, "/visits", "export 2026-11-23 2026-11-23")
    assert "Making the Home Visiting Safety Log for 23 Nov 2026 to 23 Nov 2026" in answer.text
    ws.runtime.settle()

    [shared] = ws.sim.files(OFFICE)  # uploaded into the office member's DM with the bot, nowhere else
    assert shared.filename == "home-visiting-safety-log-2026-11-23-to-2026-11-23.csv"
    assert "for you only" in shared.comment
    assert ws.sim.files(OFFICE_CHANNEL) == [] and ws.sim.files(SAFEGUARDING_CHANNEL) == [] and ws.sim.files(REQUESTER) == []
    assert [c.method for c in ws.sim.calls if c.method.startswith("files.")] == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    header, *rows = rows_of(shared.content)
    assert header == ["VISIT", "STAFF NAME(S)", "MOBILE NO.(S)", "MODE OF TRAVEL", "FAMILY VISITING", "ADDRESS", "CONTACT NUMBER",
                      "DATE & TIME OF VISIT", "EXPECTED TIME OF RETURN", "TIME OF RETURN", "✓ CONFIRMED BY"]
    assert rows == [[
        "#1", "Sam Visitor; Chris Companion", "07700 900010; 07700 900011", "Car: AB12 CDE, blue Ford Focus", "AB123",
        "12 Example Road, Botley OX2 9AA", "01632 960123", "2026-11-23 10:00", "2026-11-23 10:45", "2026-11-23 11:10", "Sam Visitor",
    ]]
    [(actor, _, detail)] = audits(ws, "exported")
    assert actor == OFFICE and detail == {"period_from": "2026-11-23", "period_to": "2026-11-23", "rows": 1, "via": "slack"}


def test_a_responder_who_confirmed_the_visitor_safe_is_who_confirmed(workspace):
    ws = workspace
    out_at_ten(ws)
    ws.driver.command(REQUESTER, "/sos", "help")
    ws.runtime.tick()
    [alert] = [m for m in ws.channel(SAFEGUARDING_CHANNEL) if "[Reached, safe]" in m.plain()]
    ws.driver.click(DSL, alert, "Reached, safe", channel=SAFEGUARDING_CHANNEL)
    ws.driver.submit(DSL, {"note": "Phoned, all fine"})
    ws.runtime.tick()

    ws.driver.command(DSL, "/visits", "export 23/11/2026")
    ws.runtime.settle()
    [shared] = ws.sim.files(DSL)
    [row] = rows_of(shared.content)[1:]
    assert row[-1] == "Jo Reid"


@pytest.mark.parametrize("who", [REQUESTER, COMPANION, SENIOR])
def test_only_office_dsl_and_head_may_export(workspace, who):
    ws = workspace
    overdue_then_back(ws)
    answer = ws.driver.command(who, "/visits", "export 2026-11-23")
    assert answer.text == ":warning: Only the office, the DSL and the head can export the safety log."
    ws.runtime.settle()
    assert all(ws.sim.files(u) == [] for u in USERS)
    assert [(actor, detail) for actor, _, detail in audits(ws, "export_refused")] == [(who, {})]
    assert audits(ws, "exported") == []


@pytest.mark.parametrize("typed, said", [
    ("export 2026-13-01", "`2026-13-01` is not a date in the calendar: type a date like 2025-09-01 or 01/09/2025."),
    ("export 23-11-2026", "`23-11-2026` is not a date I can read: type a date like 2025-09-01 or 01/09/2025."),
    ("export 2026-11-24 2026-11-01", "The period runs backwards: 24 Nov 2026 is after 01 Nov 2026. Give the earlier date first."),
    ("export 2025-01-01 2025-01-31", "No home visits were made from 01 Jan 2025 to 31 Jan 2025: there is nothing to export. Try a longer period."),
    ("export 2026-11-01 2026-11-02 2026-11-03", "Give at most two dates"),
])
def test_bad_periods_get_a_clear_message_and_no_file(workspace, typed, said):
    ws = workspace
    overdue_then_back(ws)
    answer = ws.driver.command(HEAD, "/visits", typed)
    assert said in answer.text
    ws.runtime.settle()
    assert ws.sim.files(HEAD) == [] and audits(ws, "exported") == []


def test_visits_alone_still_shows_the_board(workspace):
    ws = workspace
    out_at_ten(ws)
    assert "Home visits today" in ws.driver.command(OFFICE, "/visits").text


def test_a_failed_upload_tells_the_asker_and_shares_nothing(workspace):
    ws = workspace
    overdue_then_back(ws)
    ws.sim.fail("files.completeUploadExternal", status=200, error="internal_error", times=5)
    ws.driver.command(OFFICE, "/visits", "export 2026-11-23")
    ws.runtime.settle()
    assert ws.sim.files(OFFICE) == []
    assert "I could not send you the file just now" in ws.dms(OFFICE)[-1].plain()


def test_cli_export_writes_the_same_log(workspace, tmp_path, monkeypatch, capsys):
    ws = workspace
    overdue_then_back(ws)
    monkeypatch.setenv("VISITSAFE_DB", str(ws.settings.visitsafe_db))
    monkeypatch.setenv("VISITSAFE_CONFIG", str(ws.settings.visitsafe_config))
    out = tmp_path / "log.csv"
    assert main(["export", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out)]) == 0
    assert "(1 visits)" in capsys.readouterr().out
    header, row = rows_of(out.read_bytes())
    assert header[0] == "VISIT" and row[0] == "#1" and row[4] == "AB123"
    assert out.stat().st_mode & 0o077 == 0  # personal data: readable by its owner only
    assert [d for a, _, d in audits(ws, "exported") if a.startswith("cli")] == [
        {"period_from": "2026-11-01", "period_to": "2026-11-30", "rows": 1, "via": "cli"}]
    assert main(["export", "--from", "2026-12-01", "--to", "2026-11-01", "--out", str(out)]) == 2
    assert "The period runs backwards" in capsys.readouterr().err
    assert main(["export", "--from", "2024-01-01", "--to", "2024-01-02", "--out", str(tmp_path / "none.csv")]) == 2
    assert "nothing to export" in capsys.readouterr().err and not (tmp_path / "none.csv").exists()


def test_a_cell_that_would_run_as_a_formula_is_kept_as_text():
    assert ex.cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert ex.cell("@SUM(A1)") == "'@SUM(A1)"
    assert ex.cell("-2+3") == "'-2+3" and ex.cell("+44 7700 900010") == "+44 7700 900010"  # a phone number stays as typed
    assert ex.cell("+cmd|' /C calc'!A0") == "'+cmd|' /C calc'!A0"


# ----- item 8: the school calendar ----------------------------------------------------------------------------

def fetch(ws, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ws.server.port}{path}", timeout=10) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def feed(ws):
    url = exports.calendar_url(ws.runtime.ctx, f"http://127.0.0.1:{ws.server.port}")
    status, body, headers = fetch(ws, url[url.index("/calendar.ics"):])
    assert status == 200 and headers["Content-Type"].startswith("text/calendar"), (status, body)
    for word in PERSONAL:
        assert word.encode() not in body, word
    return {str(e["uid"]): e for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}


def times(event):
    return event.decoded("dtstart").astimezone(timezone.utc).strftime("%H:%M"), event.decoded("dtend").astimezone(timezone.utc).strftime("%H:%M")


def test_the_calendar_feed_follows_approval_out_extend_back_and_cancel(workspace):
    ws = workspace
    assert feed(ws) == {}
    request_visit(ws)
    assert feed(ws) == {}  # requested, not approved: not in the calendar
    for approver in (DSL, HEAD):
        ws.driver.click(approver, approval_dm(ws, approver), "Approve")
    [event] = feed(ws).values()
    assert str(event["summary"]) == "Doorstep visit #1 (2 staff)" and times(event) == ("10:00", "10:45")
    assert "approved, not started" in str(event["description"])

    ws.clock.set(ws.clock().replace(hour=10))
    ws.driver.command(REQUESTER, "/out", "1h")
    assert times(next(iter(feed(ws).values()))) == ("10:00", "11:00")
    ws.clock.set(ws.clock().replace(hour=10, minute=40))
    ws.driver.command(REQUESTER, "/extend", "20m")
    [event] = feed(ws).values()
    assert times(event) == ("10:00", "11:20") and "out, due back 11:20" in str(event["description"])
    ws.clock.set(ws.clock().replace(hour=10, minute=50))
    ws.driver.command(REQUESTER, "/back")
    [event] = feed(ws).values()
    assert times(event) == ("10:00", "10:50") and "back at 10:50" in str(event["description"])
    first_sequence = int(event["sequence"])

    request_visit(ws, details=visit_form(start_time="14:00"))
    for approver in (DSL, HEAD):
        ws.driver.click(approver, [m for m in ws.dms(approver) if "14:00" in m.plain() and "[Approve]" in m.plain()][0], "Approve")
    assert len(feed(ws)) == 2
    [receipt] = [m for m in ws.dms(REQUESTER) if "14:00" in m.plain() and "[Cancel" in m.plain()]
    ws.driver.click(REQUESTER, receipt, receipt.plain().split("[")[-1].rstrip("]"))
    [event] = feed(ws).values()  # the cancelled visit is gone; the one made stays
    assert "#1" in str(event["summary"]) and int(event["sequence"]) == first_sequence


def test_a_wrong_or_missing_calendar_token_is_a_plain_404(workspace):
    ws = workspace
    request_visit(ws)
    unknown = fetch(ws, "/no-such-page")
    assert fetch(ws, "/calendar.ics")[:2] == unknown[:2] == (404, b"Not Found")  # no feed made yet
    url = exports.calendar_url(ws.runtime.ctx, "https://visitsafe.example.org")
    token = url.split("token=")[1]
    assert fetch(ws, "/calendar.ics")[:2] == unknown[:2]
    assert fetch(ws, "/calendar.ics?token=")[:2] == unknown[:2]
    assert fetch(ws, "/calendar.ics?token=" + token[:-1] + ("0" if token[-1] != "0" else "1"))[:2] == unknown[:2]
    assert fetch(ws, f"/calendar.ics?token={token}")[0] == 200
    renewed = exports.calendar_url(ws.runtime.ctx, "https://visitsafe.example.org", new=True)
    assert renewed != url and fetch(ws, f"/calendar.ics?token={token}")[:2] == unknown[:2]  # the old address stops working


def test_cli_prints_the_calendar_url(workspace, monkeypatch, capsys):
    ws = workspace
    monkeypatch.setenv("VISITSAFE_DB", str(ws.settings.visitsafe_db))
    monkeypatch.setenv("VISITSAFE_CONFIG", str(ws.settings.visitsafe_config))
    monkeypatch.delenv("VISITSAFE_PUBLIC_URL", raising=False)
    assert main(["calendar-url"]) == 2 and "--base" in capsys.readouterr().err
    assert main(["calendar-url", "--base", "https://visitsafe.example.org/"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://visitsafe.example.org/calendar.ics?token=") and len(url.split("=")[1]) == 64
    assert fetch(ws, url[url.index("/calendar.ics"):])[0] == 200


# ----- item 9: the governors' report --------------------------------------------------------------------------

YEAR = exports.Period(date(2026, 9, 1), date(2027, 8, 31))


def seed_year(store, policy):
    """A known school year 2026-27: 5 real visits made, 1 declined, 1 requested, 1 drill, 1 the year before.

    #1 attendance home, no concerns, overdue: alert 10:45, back 11:10 (25 min); recorded on time.
    #2 attendance doorstep, nobody home; recorded late.
    #3 welfare doorstep, incident (+ its report), overdue twice: 14:00 -> checkin 14:05 (5 min), 14:30 -> confirmed safe 15:30 (60 min); SOS.
    #4 transport home, left unsafe (+ its report), overdue never confirmed; not recorded, past the deadline.
    #5 welfare doorstep, allegation (+ its report) and a /concern during the visit; no outcome row for #6 (none given).
    """
    day = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
    made = [
        ("attendance", "home"), ("attendance", "doorstep"), ("welfare", "doorstep"), ("transport", "home"), ("welfare", "doorstep"),
        ("medical", "home"),
    ]
    with store.transaction() as tx:
        ids = []
        for i, (reason, kind) in enumerate(made):
            start = day + timedelta(days=i)
            visit = make_visit(policy, state=State.returned, details=make_details(reason=reason, visit_type=kind, date=start.date().isoformat()),
                               now=start, start_at=start, departed_at=start, expected_return=start + timedelta(minutes=45),
                               returned_at=start + timedelta(hours=1))
            ids.append(tx.add_visit(visit, start).id)
        declined = tx.add_visit(make_visit(policy, state=State.declined, start_at=day, now=day), day).id
        tx.add_visit(make_visit(policy, state=State.requested, start_at=day, now=day), day)
        drill = tx.add_visit(make_visit(policy, state=State.returned, start_at=day, departed_at=day, returned_at=day, now=day), day).id
        before = datetime(2026, 8, 31, 10, tzinfo=timezone.utc)
        old = tx.add_visit(make_visit(policy, state=State.returned, start_at=before, departed_at=before, returned_at=before, now=before), before).id
        q = tx.db.conn.execute
        q("UPDATE visits SET drill = 1 WHERE id = ?", [drill])
        for visit_id, outcome in zip([*ids[:5], drill, old], ["no_concerns", "nobody_home", "incident", "left_unsafe", "allegation", "incident", "incident"]):
            q("INSERT INTO outcomes (visit_id, outcome, given_by, given_at) VALUES (?, ?, ?, ?)", [visit_id, outcome, REQUESTER, day.timestamp()])
        for visit_id, kind in [(ids[2], "incident"), (ids[3], "left_unsafe"), (ids[4], "allegation"), (ids[4], "concern"), (drill, "incident"), (old, "incident")]:
            q("INSERT INTO concerns (visit_id, kind, raised_by, raised_at, detail) VALUES (?, ?, ?, ?, ?)",
              [visit_id, kind, REQUESTER, day.timestamp(), json.dumps({"what": "Shouted at by Mr Smith at 12 Example Road"})])

        def event(visit_id, action, at, **detail):
            tx.audit(REQUESTER, action, at, visit_id, **detail)

        t = lambda i, h, m: (day + timedelta(days=i)).replace(hour=h, minute=m)  # noqa: E731
        event(ids[0], "tier_sent", t(0, 10, 45), tier=0)
        event(ids[0], "tier_sent", t(0, 11, 0), tier=1)
        event(ids[0], "back", t(0, 11, 10))
        event(ids[2], "tier_sent", t(2, 14, 0), tier=0)
        event(ids[2], "checkin", t(2, 14, 5))
        event(ids[2], "tier_sent", t(2, 14, 30), tier=0)
        event(ids[2], "emergency_sos", t(2, 14, 40))
        event(ids[2], "confirmed_safe", t(2, 15, 30))
        event(ids[3], "tier_sent", t(3, 10, 45), tier=0)
        event(drill, "tier_sent", day, tier=0)
        event(drill, "emergency_sos", day)
        for visit_id, due, recorded in [(ids[0], 100.0, 50.0), (ids[1], 100.0, 150.0), (ids[3], 100.0, None), (drill, 100.0, None)]:
            q("INSERT INTO records (visit_id, owner, due_at, remind_at, recorded_at) VALUES (?, ?, ?, ?, ?)", [visit_id, REQUESTER, due, due / 2, recorded])
    return ids, declined


def test_the_reports_figures_match_a_known_year_and_drills_never_count(workspace):
    ws = workspace
    seed_year(ws.runtime.store, ws.runtime.policy)
    f = exports.figures(ws.runtime.ctx, YEAR)
    assert (f.requested, f.declined, f.visits) == (8, 1, 6)
    assert f.by_reason == {"attendance": 2, "welfare": 2, "medical": 1, "transport": 1}
    assert f.by_type == {"home": 3, "doorstep": 3}
    assert f.by_outcome == {"no_concerns": 1, "nobody_home": 1, "incident": 1, "left_unsafe": 1, "allegation": 1, "none_given": 1}
    assert f.overdue_events == 4 and sorted(f.minutes_to_confirmation) == [5, 25, 60]
    assert (f.median_minutes, f.worst_minutes) == (25, 60)
    assert f.emergencies == 1
    assert f.reports == {"concern": 1, "incident": 1, "left_unsafe": 1, "allegation": 1}
    assert f.records == {"Recorded on time": 1, "Recorded late": 1, "Not recorded, past the deadline": 1, "Not yet due": 0}


def test_the_head_gets_the_report_as_html_with_svg_charts_and_a_csv_with_no_personal_data(workspace):
    ws = workspace
    seed_year(ws.runtime.store, ws.runtime.policy)
    ws.clock.set(datetime(2027, 7, 20, 9, tzinfo=timezone.utc))
    answer = ws.driver.command(HEAD, "/visits", "report")  # this school year by default
    assert "Making the governors' report for 01 Sep 2026 to 31 Aug 2027" in answer.text
    ws.runtime.settle()
    page, figures_csv = sorted(ws.sim.files(HEAD), key=lambda f: f.filename)[::-1]
    assert (page.filename, figures_csv.filename) == ("governors-report-2026-27.html", "governors-report-2026-27.csv")
    html = page.content.decode()
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") == 3 and "<img" not in html and "http" not in html.split("<svg")[0]
    assert "@media print" in html and "Visits by reason" in html
    for word in (*PERSONAL, "Mr Smith", "U10", "U11"):
        assert word not in html and word.encode() not in figures_csv.content, word
    rows = {(s, item): v for s, item, v in rows_of(figures_csv.content)[1:]}
    assert rows[("Visits", "Made")] == "6" and rows[("Overdue", "Overdue events")] == "4"
    assert rows[("Overdue", "Median minutes to confirmation")] == "25" and rows[("Overdue", "Worst minutes to confirmation")] == "60"
    assert rows[("Visits by reason", "Attendance concerns")] == "2" and rows[("Visits by outcome", "No outcome given")] == "1"
    assert rows[("Safeguarding reports", "Incidents")] == "1" and rows[("Safeguarding reports", "Allegations")] == "1"
    assert rows[("Records on CPOMS", "Recorded late")] == "1"
    [(actor, _, detail)] = audits(ws, "report_made")
    assert actor == HEAD and detail == {"period_from": "2026-09-01", "period_to": "2027-08-31", "via": "slack"}


@pytest.mark.parametrize("who", [DSL, OFFICE, REQUESTER])
def test_only_the_head_may_make_the_report(workspace, who):
    ws = workspace
    answer = ws.driver.command(who, "/visits", "report 2026-27")
    assert answer.text == ":warning: Only the head can make the governors' report."
    ws.runtime.settle()
    assert ws.sim.files(who) == [] and audits(ws, "report_made") == []


def test_a_school_year_in_the_wrong_form_is_explained(workspace):
    answer = workspace.driver.command(HEAD, "/visits", "report 2026-28")
    assert "`2026-28` is not a school year: type it like 2025-26 (September 2025 to August 2026)." in answer.text


def test_cli_report_writes_html_and_csv(workspace, tmp_path, monkeypatch, capsys):
    ws = workspace
    seed_year(ws.runtime.store, ws.runtime.policy)
    monkeypatch.setenv("VISITSAFE_DB", str(ws.settings.visitsafe_db))
    monkeypatch.setenv("VISITSAFE_CONFIG", str(ws.settings.visitsafe_config))
    out = tmp_path / "report.html"
    assert main(["report", "--year", "2026-27", "--out", str(out)]) == 0
    assert "<svg" in out.read_text() and rows_of((tmp_path / "report.csv").read_bytes())[0] == ["Section", "Figure", "Value"]
    assert main(["report", "--year", "26-27", "--out", str(out)]) == 2
    assert "is not a school year" in capsys.readouterr().err


def test_school_years_and_dates_parse():
    assert ex.parse_school_year("2025-26") == (date(2025, 9, 1), date(2026, 8, 31))
    assert ex.parse_school_year("2025/2026") == (date(2025, 9, 1), date(2026, 8, 31))
    assert ex.parse_school_year("1999-00") == (date(1999, 9, 1), date(2000, 8, 31))
    assert ex.school_year_of(date(2026, 8, 31)) == (date(2025, 9, 1), date(2026, 8, 31))
    assert ex.parse_period([], date(2026, 11, 23)) == (date(2026, 9, 1), date(2026, 11, 23))
    assert ex.parse_period(["01/10/2026"], date(2026, 11, 23)) == (date(2026, 10, 1), date(2026, 11, 23))


# ----- item 11: retention -------------------------------------------------------------------------------------

def test_retention_purges_the_after_visit_text_and_keeps_the_counts(workspace):
    ws = workspace
    ids, _ = seed_year(ws.runtime.store, ws.runtime.policy)
    store = ws.runtime.store
    long_ago = datetime(2026, 11, 23, 12, tzinfo=timezone.utc).timestamp()
    with store.transaction() as tx:
        q = tx.db.conn.execute
        q("INSERT INTO referrals (visit_id, agency, referred_on, referred_by, consent, notes, logged_at) VALUES (?, 'Early Help', ?, ?, 1, ?, ?)",
          [ids[2], long_ago, DSL, "Mum asked for help with Jamie", long_ago])
        q("INSERT INTO shares (visit_id, shared_by, shared_with, shared_at, why, logged_at) VALUES (?, ?, ?, ?, ?, ?)",
          [ids[2], DSL, HEAD, long_ago, "Jamie's dad back at 12 Example Road", long_ago])
        q("INSERT INTO register (address_key, family_key, flag, reason, author, created_at, cleared_at, cleared_by, clear_note, label)"
          " VALUES ('12 example road ox2 9aa', 'ab123', 'under_review', 'Dog bit a visitor', ?, ?, ?, ?, 'Reviewed at the VCM', '12 Example Road')",
          [DSL, long_ago, long_ago, DSL])
        q("INSERT INTO register (address_key, flag, reason, author, created_at) VALUES ('1 open road', 'do_not_visit_alone', 'Known violence', ?, ?)",
          [DSL, long_ago])
    before = exports.figures(ws.runtime.ctx, YEAR)

    ws.clock.set(datetime(2027, 11, 22, 9, tzinfo=timezone.utc))  # 364 days on: nothing is due yet
    ws.runtime.tick()
    assert store.read().db.conn.execute("SELECT COUNT(*) FROM concerns WHERE purged_at IS NOT NULL").fetchone()[0] == 0

    ws.clock.set(datetime(2027, 11, 25, 9, tzinfo=timezone.utc))  # past the policy's 365 days
    ws.runtime.tick()
    q = store.read().db.conn.execute
    dump = json.dumps([q(f"SELECT * FROM {t}").fetchall() for t in ("concerns", "referrals", "shares")])
    for word in ("Mr Smith", "Jamie", "Example Road"):
        assert word not in dump, word
    assert q("SELECT DISTINCT detail FROM concerns").fetchall() == [("{}",)]
    cleared, still_open = q("SELECT reason, clear_note, label, address_key, family_key FROM register ORDER BY id").fetchall()
    assert cleared == ("(purged)", "(purged)", None, None, None)
    assert still_open[0] == "Known violence"  # an open flag still stops visits: it keeps its reason
    assert q("SELECT agency, consent FROM referrals").fetchall() == [("Early Help", 1)]
    after = exports.figures(ws.runtime.ctx, YEAR)
    assert (after.reports, after.by_outcome, after.overdue_events) == (before.reports, before.by_outcome, before.overdue_events)
    [(actor, _, detail)] = audits(ws, "purged_after_visit")
    assert actor == "visitsafe" and detail == {"concerns": 6, "referrals": 1, "shares": 1, "register": 1}
    ws.runtime.tick()
    assert len(audits(ws, "purged_after_visit")) == 1  # once
