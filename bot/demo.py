"""`visitsafe demo`: one whole visit, played through the real app against a simulated Slack (or Google Chat) on loopback."""
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
from bot.emoji import emojize
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


def _first_name(user: str) -> str:
    return PEOPLE.get(user, user).split(" (")[0]


def as_seen(text: str) -> str:
    """Markup drawn as the platform shows it, in plain text: emoji, bold without asterisks, no backticks, names."""
    text = re.sub(r"<@(\w+)>", lambda m: "@" + _first_name(m.group(1)), text)
    text = re.sub(r"@users/(\d+)", lambda m: "@" + _first_name("U" + m.group(1)), text)  # a Chat card's mention
    text = re.sub(r"<[^|<>]+\|([^<>]+)>", r"\1", text)  # <url|label> shows its label
    text = emojize(text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", text)
    text = re.sub(r"(?<!\w)_([^_\n]+)_(?!\w)", r"\1", text)
    text = text.replace("`", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("\u2039", "<").replace("\u203a", ">")


def form_lines(view: dict, answers: dict) -> list[str]:
    """A Slack form's questions with the answers given, as the person filled it in."""
    lines = []
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        labels = {o["value"]: o["text"]["text"] for o in element.get("options", [])}
        lines.append(_answer_line(block["label"]["text"], element["type"] == "multi_users_select", labels, answers.get(block["block_id"])))
    return lines


def _answer_line(label: str, people: bool, labels: dict, answer: object) -> str:
    if people:
        shown = ", ".join(_first_name(u) for u in answer or []) or "(nobody)"  # type: ignore[attr-defined]
    elif isinstance(answer, list):
        shown = ", ".join(labels.get(a, a) for a in answer) or "(none ticked)"
    else:
        shown = labels.get(answer, answer) if answer else "(left blank)"
    return f"{label}: {shown}"


class SlackStage:
    """The demo school in a simulated Slack workspace, the real app serving it on loopback."""

    where = "a simulated Slack workspace"
    platform = "Slack"

    def __init__(self, folder: Path, policy, clock: FixedClock):
        self.sim = SimSlack(users={u: {"name": n.split(" (")[0], "phone": f"07700 9000{i:02d}"} for i, (u, n) in enumerate(PEOPLE.items())}).start()
        secret = secrets.token_hex(16)
        settings = Settings(slack_bot_token="demo-bot-token", slack_signing_secret=secret, slack_api_url=self.sim.base_url,
                            visitsafe_db=folder / "demo.db")
        self.runtime = Runtime(settings, policy, clock, process_before_response=True)
        self.server = Server(self.runtime.wsgi).start()
        self.driver = Driver(f"http://127.0.0.1:{self.server.port}/slack/events", secret, self.sim, settle=self.runtime.settle)
        self.runtime.check_slack()  # what `visitsafe doctor` checks, logged as at start-up (shown with --verbose)

    def command(self, user: str, name: str, text: str = "") -> str:
        return self.driver.command(user, name, text).text

    def form(self, user: str, answers: dict) -> tuple[str, list[str]]:
        view = self.driver.view(user)
        return (view.get("title") or {}).get("text", ""), form_lines(view, answers)

    def submit(self, user: str, answers: dict) -> None:
        self.driver.submit(user, answers)

    def with_button(self, place: str, label: str) -> list:
        return [m for m in self.sim.messages(place) if f"[{label}]" in m.plain()]

    def click(self, user: str, message, label: str) -> None:
        self.driver.click(user, message, label)

    def versions(self, place: str) -> list[tuple[tuple, int, str]]:
        """Each message in a place: a key, how many versions it has had, and how it reads now."""
        return [((m.channel, m.ts), len(m.history) + 1, m.plain()) for m in self.sim.messages(place)]

    def close(self) -> None:
        self.server.stop()
        self.runtime.stop()
        self.sim.stop()


class ChatStage:
    """The demo school in a simulated Google Chat, the real app serving POST /gchat/events on loopback."""

    where = "a simulated Google Chat"
    platform = "Google Chat"
    AUDIENCE = "123456789012"  # the Cloud project number the app is configured with

    def __init__(self, folder: Path, policy, clock: FixedClock):
        from bot.simchat import SimChat
        from bot.simchat.driver import ChatDriver

        self.sim = SimChat(users={self.id(u): n.split(" (")[0] for u, n in PEOPLE.items()},
                           spaces={self.id(c): n for c, n in CHANNELS.items()}).start()
        settings = Settings(google_chat_audience=self.AUDIENCE, google_chat_certs_url=self.sim.certs_url,
                            google_chat_api_url=self.sim.base_url, visitsafe_db=folder / "demo.db",
                            google_application_credentials=self.sim.write_service_account(folder / "service-account.json"))
        self.runtime = Runtime(settings, policy, clock, process_before_response=True)
        self.server = Server(self.runtime.wsgi).start()
        self.driver = ChatDriver(f"http://127.0.0.1:{self.server.port}/gchat/events", self.sim, self.AUDIENCE)
        self.dialogs: dict[str, dict] = {}

    @staticmethod
    def id(name: str) -> str:
        """The demo's people (U10) and channels (C0OFFICE) as Chat users (users/10) and spaces (spaces/OFFICE)."""
        if name.startswith("U"):
            return "users/" + name[1:]
        return "spaces/" + name[2:] if name.startswith("C0") else name

    def _answered(self, user: str, response) -> str:
        self.runtime.settle()  # Chat answers synchronously: then deliver what the answer queued
        body = response.body if isinstance(response.body, dict) else {}
        action = (body.get("actionResponse") or {}).get("dialogAction") or {}
        if action.get("dialog"):
            self.dialogs[user] = action["dialog"]["body"]
            return ""
        if "actionStatus" in action:
            self.dialogs.pop(user, None)
            return action["actionStatus"].get("userFacingMessage") or ""
        return response.text

    def command(self, user: str, name: str, text: str = "") -> str:
        user = self.id(user)
        return self._answered(user, self.driver.command(user, name, text, dialog=name == "/visit"))

    def form(self, user: str, answers: dict) -> tuple[str, list[str]]:
        card = self.dialogs[self.id(user)]
        lines = []
        for section in card.get("sections") or []:
            for widget in section.get("widgets") or []:
                field = next((widget[k] for k in ("textInput", "selectionInput", "dateTimePicker") if k in widget), None)
                if field is not None:
                    labels = {i["value"]: i["text"] for i in field.get("items") or []}
                    answer = answers.get(field["name"])
                    lines.append(_answer_line(field["label"].removesuffix(" (optional)"), field.get("type") == "MULTI_SELECT", labels, answer))
        return card["header"]["title"], lines

    def submit(self, user: str, answers: dict) -> None:
        from bot.forms import form_for
        from bot.gchat.forms import form_inputs

        user = self.id(user)
        action = self.dialogs[user]["fixedFooter"]["primaryButton"]["onClick"]["action"]
        chat_answers = {k: [self.id(v) for v in a] if k == "companions" else a for k, a in answers.items()}
        common = {"invokedFunction": action["function"], "parameters": {p["key"]: p["value"] for p in action.get("parameters") or []},
                  "formInputs": form_inputs(form_for(action["function"]), chat_answers)}
        event = self.driver._event("CARD_CLICKED", user, None, common=common)
        event.update(isDialogEvent=True, dialogEventType="SUBMIT_DIALOG")
        self._answered(user, self.driver.send(event))

    def with_button(self, place: str, label: str) -> list:
        return [m for m in self.sim.messages(self.id(place)) if f"[{label}]" in m.plain()]

    def click(self, user: str, message, label: str) -> None:
        user = self.id(user)
        self._answered(user, self.driver.click_button(user, message, label))

    def versions(self, place: str) -> list[tuple[tuple, int, str]]:
        return [((m.name,), len(m.history) + 1, m.plain()) for m in self.sim.messages(self.id(place))]

    def close(self) -> None:
        self.server.stop()
        self.runtime.stop()
        self.sim.stop()


def chat_policy(raw: dict) -> dict:
    """The demo policy on Google Chat: Chat ids, and mobiles from the staff directory (Chat profiles have none)."""
    ids = ChatStage.id
    return {
        **raw, "platform": "google_chat",
        "channels": {k: ids(v) for k, v in raw["channels"].items()},
        "roles": {k: [ids(u) for u in v] for k, v in raw["roles"].items()},
        "staff": {ids(u): {"name": n.split(" (")[0], "mobile": f"07700 9000{i:02d}"} for i, (u, n) in enumerate(PEOPLE.items())},
    }


class Narrator:
    """Prints each step, then whatever each person newly saw because of it."""

    def __init__(self, stage, clock: FixedClock, tz: ZoneInfo):
        self.stage, self.clock, self.tz = stage, clock, tz
        self.seen: dict[tuple, int] = {}

    def step(self, title: str) -> None:
        print(f"\n━━ {self.clock().astimezone(self.tz):%H:%M}  {title}")

    def reply(self, who: str, text: str) -> None:
        print(f"   ▸ only {_first_name(who)} sees: {as_seen(text).strip()}".replace("\n", "\n     "))

    def form(self, who: str, answers: dict) -> None:
        """Print the form `who` is looking at, filled in with `answers`, then submit it."""
        title, lines = self.stage.form(who, answers)
        print(f"   ▤ {_first_name(who)}'s form: {as_seen(title)}")
        for line in lines:
            print(f"     │ {as_seen(line)}")
        self.stage.submit(who, answers)

    def places(self) -> list[tuple[str, str]]:
        return [*((u, f"{n} (DM)") for u, n in PEOPLE.items()), *CHANNELS.items()]

    def mark_all_seen(self) -> None:
        self.seen.update({key: count for place, _ in self.places() for key, count, _ in self.stage.versions(place)})

    def show_new(self) -> None:
        for place, label in self.places():
            for key, count, plain in self.stage.versions(place):
                if self.seen.get(key) == count:
                    continue
                verb = "updated" if key in self.seen else "new"
                self.seen[key] = count
                body = as_seen(plain).strip().replace("\n", "\n     │ ")
                print(f"   ✉ {label}, {verb}:\n     │ {body}")


def _request_and_approve(stage, today: date, start: str, pupil: str) -> None:
    stage.command("U10", "/visit")
    stage.submit("U10", {
        "pupil_ref": pupil, "address": "4 Sample Close, Botley", "contact_phone": "01632 960456",
        "reason": "welfare", "visit_type": "home", "planned": "planned", "date": today.isoformat(),
        "start_time": start, "duration": "30m", "travel_mode": "foot",
        "travel_details": "Along Church Lane, back the same way", "parents_informed": "yes",
    })
    stage.submit("U10", {"risks": ["animals"], "allergies": "none", "companions": ["U11"]})
    for approver in ("U01", "U02"):
        stage.click(approver, stage.with_button(approver, "Approve")[-1], "Approve")


def _overdue_act(stage, clock: FixedClock, say: Narrator, today: date) -> None:
    """A second visit that runs late: a missed check-in, every step of the ladder, one repeat, then Reached, safe."""
    print("\n══ Part two: a visit that runs late ══")
    clock.set(clock().replace(hour=13, minute=30))
    say.step("Sam asks for an afternoon visit; Jo and Pat approve it (details as before)")
    _request_and_approve(stage, today, "14:00", "CD456")
    say.mark_all_seen()
    clock.set(clock().replace(hour=14, minute=0))
    say.step("Sam types /out 30m")
    say.reply("U10", stage.command("U10", "/out", "30m").split("\n")[0])
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
        stage.runtime.tick()
        say.step(what)
        say.show_new()
    clock.set(clock().replace(hour=15, minute=48))
    say.step("Jo reaches Sam by phone, clicks Reached, safe and adds a note")
    stage.click("U01", stage.with_button("U01", "Reached, safe")[-1], "Reached, safe")
    say.form("U01", {"note": "Spoke to Sam at 15:47: phone was on silent, leaving now"})
    say.show_new()


def run_demo(verbose: bool = False, overdue: bool = False, platform: str = "slack") -> int:
    """Play request → two approvals → out → check-in → back (and, with `overdue`, a late visit) on `platform`
    ("slack" or "google-chat"); return 0."""
    root = logging.getLogger()
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:  # the bot's log among the steps, on the same stream, so each line sits by what caused it
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("   · log: %(levelname)s %(name)s: %(message)s"))
        root.handlers = [handler]
    started = time.monotonic()
    chat = platform == "google-chat"
    policy = parse_policy(chat_policy(DEMO_POLICY) if chat else DEMO_POLICY, "demo policy")
    tz = policy.tz
    today = datetime.now(tz).date()
    while today.weekday() >= 5:  # a school day
        today += timedelta(days=1)
    clock = FixedClock(datetime.combine(today, datetime.min.time(), tzinfo=tz).replace(hour=9))
    with tempfile.TemporaryDirectory() as folder:
        stage = (ChatStage if chat else SlackStage)(Path(folder), policy, clock)
        say = Narrator(stage, clock, tz)
        print(f"VisitSafe demo: {policy.school}, in {stage.where} on this computer.")
        print(f"Each step is what a person does; under it, what each person then sees in {stage.platform} (✉ a message, ▸ a reply only they see).")
        try:
            say.step("Sam types /visit and fills in step 1 (the visit)")
            stage.command("U10", "/visit")
            say.form("U10", {
                "pupil_ref": "AB123", "address": "12 Example Road, Botley", "contact_phone": "01632 960123",
                "reason": "attendance", "visit_type": "doorstep", "planned": "planned", "date": today.isoformat(),
                "start_time": "10:00", "duration": "45m", "travel_mode": "car",
                "travel_details": "AB12 CDE, blue Ford Focus", "parents_informed": "yes",
            })
            say.step("Sam fills in step 2 (risk assessment), with Chris as companion, and sends it")
            say.form("U10", {"risks": [], "allergies": "none", "companions": ["U11"]})
            say.show_new()

            for approver in ("U01", "U02"):
                clock.advance(timedelta(minutes=10))
                say.step(f"{PEOPLE[approver].split(' (')[0]} clicks Approve")
                [dm] = stage.with_button(approver, "Approve")
                stage.click(approver, dm, "Approve")
                say.show_new()

            clock.set(clock().replace(hour=10, minute=0))
            say.step("Sam types /out 45m as they leave")
            say.reply("U10", stage.command("U10", "/out", "45m"))
            say.show_new()

            clock.advance(timedelta(minutes=20))
            stage.runtime.tick()
            say.step("20 minutes out: a check-in falls due")
            say.show_new()
            say.step("Sam clicks I'm OK")
            [prompt] = stage.with_button("U10", "I'm OK")
            stage.click("U10", prompt, "I'm OK")
            say.show_new()

            clock.advance(timedelta(minutes=5))
            say.step("The office types /visits")
            say.reply("U03", stage.command("U03", "/visits"))
            say.step("Chris, the companion, types /visits")
            say.reply("U11", stage.command("U11", "/visits"))

            clock.advance(timedelta(minutes=10))
            say.step("Sam is back and types /back")
            say.reply("U10", stage.command("U10", "/back"))
            say.show_new()
            if overdue:
                _overdue_act(stage, clock, say, today)
        finally:
            stage.close()
    print(f"\nThe demo played in {time.monotonic() - started:.1f} s, with no network and no tokens.")
    return 0
