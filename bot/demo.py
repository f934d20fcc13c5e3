"""`visitsafe demo`: one whole visit, played through the real app against a simulated Slack on loopback."""
from __future__ import annotations

import logging
import re
import secrets
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.clock import FixedClock
from bot.runtime import Runtime
from bot.serving import Server
from bot.settings import Settings
from bot.simslack import SimSlack
from bot.simslack.driver import Driver
from flows.policy import parse_policy

PEOPLE = {
    "U10": "Sam Visitor (teacher)",
    "U11": "Chris Companion (teaching assistant)",
    "U01": "Jo Reid (DSL)",
    "U02": "Pat Head (headteacher)",
    "U03": "Alex Office (office)",
}
CHANNELS = {"C0OFFICE": "#office (private)", "C0SAFE": "#safeguarding (private)"}
DEMO_POLICY = {
    "school": "Demo Primary",
    "timezone": "Europe/London",
    "channels": {"office": "C0OFFICE", "safeguarding": "C0SAFE"},
    "roles": {"dsl": ["U01"], "head": ["U02"], "office": ["U03"]},
    "approvals": {"all_of": ["dsl", "head"]},
    "pairs_required": True,
    "visiting_hours": {"start": "08:00", "end": "17:30"},
    "checkin_interval": "20m",
    "escalation": [
        {"after": "0m", "notify": ["visitor", "companions"]},
        {"after": "15m", "notify": ["office"]},
        {"after": "30m", "notify": ["safeguarding", "dsl"]},
        {"after": "60m", "notify": ["head", "dsl"]},
    ],
}


# Slack draws these codes as emoji; the demo prints what people see.
EMOJI = {
    "rotating_light": "🚨", "white_check_mark": "✅", "warning": "⚠️", "sos": "🆘", "x": "❌", "walking": "🚶",
    "white_circle": "⚪", "large_blue_circle": "🔵", "red_circle": "🔴", "hourglass_flowing_sand": "⏳", "hourglass": "⌛",
    "eyes": "👀", "clock3": "🕒", "arrows_counterclockwise": "🔄", "arrow_right": "➡️", "alarm_clock": "⏰",
}


def _first_name(user: str) -> str:
    return PEOPLE.get(user, user).split(" (")[0]


def as_seen(text: str) -> str:
    """Slack's markup drawn as Slack shows it, in plain text: emoji, bold without asterisks, no backticks, names."""
    text = re.sub(r"<@(\w+)>", lambda m: "@" + _first_name(m.group(1)), text)
    text = re.sub(r"<[^|<>]+\|([^<>]+)>", r"\1", text)  # <url|label> shows its label
    text = re.sub(r":([a-z0-9_+-]+):", lambda m: EMOJI.get(m.group(1), m.group(0)), text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\w)_([^_\n]+)_(?!\w)", r"\1", text)
    text = text.replace("`", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def form_lines(view: dict, answers: dict) -> list[str]:
    """A form's questions with the answers given, as the person filled it in."""
    lines = []
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element, answer = block["element"], answers.get(block["block_id"])
        labels = {o["value"]: o["text"]["text"] for o in element.get("options", [])}
        if element["type"] == "multi_users_select":
            shown = ", ".join(_first_name(u) for u in answer or []) or "(nobody)"
        elif isinstance(answer, list):
            shown = ", ".join(labels.get(a, a) for a in answer) or "(none ticked)"
        else:
            shown = labels.get(answer, answer) if answer else "(left blank)"
        lines.append(f"{block['label']['text']}: {shown}")
    return lines


class Narrator:
    """Prints each step, then whatever each person newly saw because of it."""

    def __init__(self, sim: SimSlack, clock: FixedClock, tz: ZoneInfo):
        self.sim, self.clock, self.tz = sim, clock, tz
        self.seen: dict[tuple[str, str], int] = {}

    def step(self, title: str) -> None:
        print(f"\n━━ {self.clock().astimezone(self.tz):%H:%M}  {title}")

    def reply(self, who: str, text: str) -> None:
        print(f"   ▸ only {_first_name(who)} sees: {as_seen(text).strip()}".replace("\n", "\n     "))

    def form(self, who: str, driver: Driver, answers: dict) -> None:
        """Print the form `who` is looking at, filled in with `answers`, then submit it."""
        view = driver.view(who)
        print(f"   ▤ {_first_name(who)}'s form: {as_seen((view.get('title') or {}).get('text', ''))}")
        for line in form_lines(view, answers):
            print(f"     │ {as_seen(line)}")
        driver.submit(who, answers)

    def show_new(self) -> None:
        for place, label in [*((u, f"{n} (DM)") for u, n in PEOPLE.items()), *CHANNELS.items()]:
            for message in self.sim.messages(place):
                version = (message.channel, message.ts)
                count = len(message.history) + 1
                if self.seen.get(version) == count:
                    continue
                verb = "updated" if version in self.seen else "new"
                self.seen[version] = count
                body = as_seen(message.plain()).strip().replace("\n", "\n     │ ")
                print(f"   ✉ {label}, {verb}:\n     │ {body}")


def _request_and_approve(driver: Driver, sim: SimSlack, today: date, start: str, pupil: str) -> None:
    driver.command("U10", "/visit")
    driver.submit("U10", {
        "pupil_ref": pupil, "address": "4 Sample Close, Botley", "contact_phone": "01632 960456",
        "reason": "welfare", "visit_type": "home", "planned": "planned", "date": today.isoformat(),
        "start_time": start, "duration": "30m", "travel_mode": "foot",
        "travel_details": "Along Church Lane, back the same way", "parents_informed": "yes",
    })
    driver.submit("U10", {"risks": ["animals"], "allergies": "none", "companions": ["U11"]})
    for approver in ("U01", "U02"):
        dm = [m for m in sim.messages(approver) if "[Approve]" in m.plain()][-1]
        driver.click(approver, dm, "Approve")


def _overdue_act(driver: Driver, sim: SimSlack, clock: FixedClock, runtime: Runtime, say: Narrator, today: date) -> None:
    """A second visit that runs late: a missed check-in, every step of the ladder, one repeat, then Reached, safe."""
    print("\n══ Part two: a visit that runs late ══")
    clock.set(clock().replace(hour=13, minute=30))
    say.step("Sam asks for an afternoon visit; Jo and Pat approve it (details as before)")
    _request_and_approve(driver, sim, today, "14:00", "CD456")
    say.seen.update({(m.channel, m.ts): len(m.history) + 1 for p in [*PEOPLE, *CHANNELS] for m in sim.messages(p)})
    clock.set(clock().replace(hour=14, minute=0))
    say.step("Sam types /out 30m")
    say.reply("U10", driver.command("U10", "/out", "30m").text.split("\n")[0])
    say.show_new()
    for hour, minute, what in (
        (14, 20, "A check-in falls due; nobody answers"),
        (14, 30, "14:30, Sam's return time: Sam and Chris are asked first"),
        (14, 45, "15 minutes late: the office is asked to phone them"),
        (15, 0, "30 minutes late: the safeguarding team and the DSL"),
        (15, 30, "An hour late: the head and the DSL, with the police step"),
        (15, 45, "Still nobody has confirmed them safe: the reminder to the DSL and the head"),
    ):
        clock.set(clock().replace(hour=hour, minute=minute))
        runtime.tick()
        say.step(what)
        say.show_new()
    clock.set(clock().replace(hour=15, minute=48))
    say.step("Jo reaches Sam by phone, clicks Reached, safe and adds a note")
    [alert] = [m for m in sim.messages("U01") if "[Reached, safe]" in m.plain()][-1:]
    driver.click("U01", alert, "Reached, safe")
    say.form("U01", driver, {"note": "Spoke to Sam at 15:47: phone was on silent, leaving now"})
    say.show_new()


def run_demo(verbose: bool = False, overdue: bool = False) -> int:
    """Play request → two approvals → out → check-in → back (and, with `overdue`, a late visit); return 0."""
    root = logging.getLogger()
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:  # the bot's log among the steps, on the same stream, so each line sits by what caused it
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("   · log: %(levelname)s %(name)s: %(message)s"))
        root.handlers = [handler]
    started = time.monotonic()
    policy = parse_policy(DEMO_POLICY, "demo policy")
    tz = policy.tz
    today = datetime.now(tz).date()
    while today.weekday() >= 5:  # a school day
        today += timedelta(days=1)
    clock = FixedClock(datetime.combine(today, datetime.min.time(), tzinfo=tz).replace(hour=9))
    with tempfile.TemporaryDirectory() as folder, SimSlack(users={u: {"name": n.split(" (")[0], "phone": f"07700 9000{i:02d}"} for i, (u, n) in enumerate(PEOPLE.items())}) as sim:
        secret = secrets.token_hex(16)
        settings = Settings(
            slack_bot_token="demo-bot-token",
            slack_signing_secret=secret,
            slack_api_url=sim.base_url,
            visitsafe_db=Path(folder) / "demo.db",
        )
        runtime = Runtime(settings, policy, clock, process_before_response=True)
        server = Server(runtime.wsgi).start()
        driver = Driver(f"http://127.0.0.1:{server.port}/slack/events", secret, sim, settle=runtime.settle)
        say = Narrator(sim, clock, tz)
        runtime.check_slack()  # what `visitsafe doctor` checks, logged as at start-up (shown with --verbose)
        print(f"VisitSafe demo: {policy.school}, in a simulated Slack workspace on this computer.")
        print("Each step is what a person does; under it, what each person then sees in Slack (✉ a message, ▸ a reply only they see).")
        try:
            say.step("Sam types /visit and fills in step 1 (the visit)")
            driver.command("U10", "/visit")
            say.form("U10", driver, {
                "pupil_ref": "AB123", "address": "12 Example Road, Botley", "contact_phone": "01632 960123",
                "reason": "attendance", "visit_type": "doorstep", "planned": "planned", "date": today.isoformat(),
                "start_time": "10:00", "duration": "45m", "travel_mode": "car",
                "travel_details": "AB12 CDE, blue Ford Focus", "parents_informed": "yes",
            })
            say.step("Sam fills in step 2 (risk assessment), with Chris as companion, and sends it")
            say.form("U10", driver, {"risks": [], "allergies": "none", "companions": ["U11"]})
            say.show_new()

            for approver in ("U01", "U02"):
                clock.advance(timedelta(minutes=10))
                say.step(f"{PEOPLE[approver].split(' (')[0]} clicks Approve")
                [dm] = [m for m in sim.messages(approver) if "[Approve]" in m.plain()]
                driver.click(approver, dm, "Approve")
                say.show_new()

            clock.set(clock().replace(hour=10, minute=0))
            say.step("Sam types /out 45m as they leave")
            say.reply("U10", driver.command("U10", "/out", "45m").text)
            say.show_new()

            clock.advance(timedelta(minutes=20))
            runtime.tick()
            say.step("20 minutes out: a check-in falls due")
            say.show_new()
            say.step("Sam clicks I'm OK")
            [prompt] = [m for m in sim.messages("U10") if "[I'm OK]" in m.plain()]
            driver.click("U10", prompt, "I'm OK")
            say.show_new()

            clock.advance(timedelta(minutes=5))
            say.step("The office types /visits")
            say.reply("U03", driver.command("U03", "/visits").text)
            say.step("Chris, the companion, types /visits")
            say.reply("U11", driver.command("U11", "/visits").text)

            clock.advance(timedelta(minutes=10))
            say.step("Sam is back and types /back")
            say.reply("U10", driver.command("U10", "/back").text)
            say.show_new()
            if overdue:
                _overdue_act(driver, sim, clock, runtime, say, today)
        finally:
            server.stop()
            runtime.stop()
    print(f"\nThe demo played in {time.monotonic() - started:.1f} s, with no network and no tokens.")
    return 0
