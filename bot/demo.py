"""`visitsafe demo`: one whole visit, played through the real app against a simulated Slack on loopback."""
from __future__ import annotations

import logging
import re
import secrets
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
        {"after": "0m", "notify": ["visitor"]},
        {"after": "15m", "notify": ["office"]},
        {"after": "30m", "notify": ["safeguarding", "dsl"]},
        {"after": "60m", "notify": ["head", "dsl"]},
    ],
}


def _names(text: str) -> str:
    return re.sub(r"<@(\w+)>", lambda m: "@" + PEOPLE.get(m.group(1), m.group(1)).split(" (")[0], text)


class Narrator:
    """Prints each step, then whatever each person newly saw because of it."""

    def __init__(self, sim: SimSlack, clock: FixedClock, tz: ZoneInfo):
        self.sim, self.clock, self.tz = sim, clock, tz
        self.seen: dict[tuple[str, str], int] = {}

    def step(self, title: str) -> None:
        print(f"\n━━ {self.clock().astimezone(self.tz):%H:%M}  {title}")

    def reply(self, who: str, text: str) -> None:
        print(f"   ▸ only {PEOPLE[who].split(' (')[0]} sees: {_names(text).strip()}".replace("\n", "\n     "))

    def show_new(self) -> None:
        for place, label in [*((u, f"{n} (DM)") for u, n in PEOPLE.items()), *CHANNELS.items()]:
            for message in self.sim.messages(place):
                version = (message.channel, message.ts)
                count = len(message.history) + 1
                if self.seen.get(version) == count:
                    continue
                verb = "updated" if version in self.seen else "new"
                self.seen[version] = count
                body = _names(message.plain()).strip().replace("\n", "\n     │ ")
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
    """A second visit that runs late: a missed check-in, the ladder, I'm handling this, confirmed safe."""
    print("\n══ Part two: a visit that runs late ══")
    clock.set(clock().replace(hour=13, minute=30))
    say.step("Sam asks for an afternoon visit; Jo and Pat approve it (details as before)")
    _request_and_approve(driver, sim, today, "14:00", "CD456")
    say.seen.update({(m.channel, m.ts): len(m.history) + 1 for p in [*PEOPLE, *CHANNELS] for m in sim.messages(p)})
    clock.set(clock().replace(hour=14, minute=0))
    say.step("Sam types /out 30m")
    say.reply("U10", driver.command("U10", "/out", "30m").text.split("\n")[0])
    say.show_new()
    for minute, what in ((20, "a check-in falls due; nobody answers"), (30, "the check-in answer was due at 14:30: missed"),
                         (45, "15 minutes on: the office tier")):
        clock.set(clock().replace(hour=14, minute=minute))
        runtime.tick()
        say.step(f"Sweep: {what}")
        say.show_new()
    clock.set(clock().replace(hour=14, minute=47))
    say.step("Alex in the office clicks I'm handling this")
    [alert] = [m for m in sim.messages("C0OFFICE") if "[I'm handling this]" in m.plain()]
    driver.click("U03", alert, "I'm handling this")
    say.show_new()
    clock.set(clock().replace(hour=14, minute=52))
    say.step("Alex reaches Sam by phone and clicks Reached, safe, with a note")
    driver.click("U03", alert, "Reached, safe")
    driver.submit("U03", {"note": "Spoke to Sam at 14:51: phone was on silent, leaving now"})
    say.show_new()


def run_demo(verbose: bool = False, overdue: bool = False) -> int:
    """Play request → two approvals → out → check-in → back (and, with `overdue`, a late visit); return 0."""
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
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
        print(f"VisitSafe demo: {policy.school}, a simulated Slack workspace on {sim.base_url}")
        print("Every step below is a signed HTTP request to the real app; every ✉ is a Slack API call it made.")
        try:
            say.step("Sam types /visit and fills in step 1 (the visit)")
            driver.command("U10", "/visit")
            driver.submit("U10", {
                "pupil_ref": "AB123", "address": "12 Example Road, Botley", "contact_phone": "01632 960123",
                "reason": "attendance", "visit_type": "doorstep", "planned": "planned", "date": today.isoformat(),
                "start_time": "10:00", "duration": "45m", "travel_mode": "car",
                "travel_details": "AB12 CDE, blue Ford Focus", "parents_informed": "yes",
            })
            say.step("Sam fills in step 2 (risk assessment), with Chris as companion, and sends it")
            driver.submit("U10", {"risks": [], "allergies": "none", "companions": ["U11"]})
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
            say.step("The scheduler's sweep: 20 minutes out, a check-in falls due")
            say.show_new()
            say.step("Sam clicks I'm OK")
            [prompt] = [m for m in sim.messages("U10") if "[I'm OK]" in m.plain()]
            driver.click("U10", prompt, "I'm OK")
            say.show_new()

            clock.advance(timedelta(minutes=5))
            say.step("The office types /visits")
            say.reply("U03", driver.command("U03", "/visits").text)

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
