"""Wires one running bot: store, Slack app, outbox dispatcher, scheduler, and the HTTP routes."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot.clock import system_clock
from bot.doctor import OK, SlackWatch, WatchedClient, run_and_log
from commands.logsafe import log_failure
from bot.outbox import MAX_BACKOFF, Dispatcher
from bot.phones import ProfilePhones
from bot.settings import Settings
from bot.slack.gate import Gate, Identity
from bot.slack.lazy import LazyWork
from bot.slack.conversations import SlackConversations
from bot.slack.listeners import register
from bot.slack.messenger import SlackMessenger
from bot.wakeup import WakeUp
from commands.clocksteps import clock_stepped
from commands.context import Ctx
from commands.safety import record_direct_sos
from commands.texts import arm_texts
from commands.sweep import LEASE, escalate_directly, fall_back, holds_lease, sweep
from commands.wakeup import missed_between, next_due_moment
from flows.policy import Policy, Role
from storage.store import NotWritable, Store, is_alert_key

log = logging.getLogger("visitsafe")

SWEEP_JOB = "visitsafe-sweep"
# Wall and monotonic clocks disagreeing by more than this between two ticks is a clock step.
STEP_TOLERANCE = timedelta(seconds=2)
# How long a clock step keeps /healthz degraded, and how long it stays listed there.
STEP_DEGRADES_FOR = timedelta(hours=1)
STEP_SHOWN_FOR = timedelta(days=1)
# A timer this far past its time when the periodic tick finds it is one the wake-up missed.
WAKE_GRACE = timedelta(seconds=1)
# Longest settle() waits for work after an answer: a Slack call's timeout and one retry.
LAZY_SETTLE_S = 25.0


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class NoProfilePhones:
    """Phones on a platform without profile phone numbers (Google Chat): none, so the policy's staff directory decides."""

    TIMEOUT_S = 0.0

    def __call__(self, user: str) -> str | None:
        return None

    def want(self, users: Iterable[str]) -> None:
        pass

    def wait_idle(self, timeout: float) -> bool:
        return True

    def stop(self) -> None:
        pass


class Runtime:
    """Everything one process runs, built from settings, a policy and a clock."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        clock: Callable[[], datetime] = system_clock,
        process_before_response: bool = True,
        monotonic: Callable[[], float] | None = None,
    ):
        self.settings = settings
        self.policy = policy
        self.clock = clock
        # Intervals are measured on a clock no step moves; a test clock brings its own.
        self.monotonic = monotonic or getattr(clock, "monotonic", time.monotonic)
        self._last_reading: tuple[datetime, float] | None = None
        self.store = Store(settings.visitsafe_db, policy)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Whatever waits after an answer (Slack's lazy listeners) runs on this pool.
        self.lazy = LazyWork()
        self.scheduler: BackgroundScheduler | None = None
        self._tick_lock = threading.Lock()
        # Why the last tick's write probe failed (None: the database could be written).
        self.db_unwritable: str | None = None
        # Slack's health as the doctor's checks and the outbox's answers see it (not used on Google Chat).
        self.slack = SlackWatch()
        self.chat_app: Any = None
        self.gate: Gate | None = None
        if policy.platform == "google_chat":
            self._build_chat(settings)
        else:
            self._build_slack(settings, process_before_response)
        self._wire_notify(settings)
        # The wake-up runs the sweep the moment a timer falls due; the periodic tick is the safety net.
        self.wakeup = WakeUp(self._next_due, lambda: self.tick(woken=True), clock, self.monotonic)
        self.ctx.wake = self._committed
        # An alert refused outright in the delivery thread: the wake-up runs a tick for its fallbacks and SMS now.
        self.dispatcher.on_refused = self.wakeup.poke

    def _wire_notify(self, settings: Settings) -> None:
        """SMS and email through GOV.UK Notify beside the chat, when NOTIFY_API_KEY is set (the policy's notify: needs it)."""
        from bot.notify.messenger import NotifyMessenger, NotifyWatch, Routed

        key = settings.notify_api_key.get_secret_value() if settings.notify_api_key else None
        if self.policy.notify is not None and not key:
            raise ValueError("the policy has a notify: section (SMS through GOV.UK Notify) but NOTIFY_API_KEY is not set")
        self.notify_watch = NotifyWatch() if key else None
        notify = NotifyMessenger(key, settings.notify_base_url, self.policy, self.store.install_id(), self.notify_watch) if key else None
        self.dispatcher.messenger = Routed(self.dispatcher.messenger, notify)
        self.dispatcher.on_sent = self._text_sent

    def _text_sent(self, tx: Any, due: Any) -> None:
        """An SMS or email has gone: every chat alert of the visit to a responder says where it is already being handled."""
        from commands.texts import text_sent
        from flows.textalerts import is_text

        if due.visit_id is not None and is_text(due.message.to) and is_alert_key(due.message.key):
            text_sent(tx, due.message, due.visit_id, due.id, self.clock(), self.ctx)

    @property
    def on_chat(self) -> bool:
        """Whether this bot serves Google Chat (the policy's platform) rather than Slack."""
        return self.policy.platform == "google_chat"

    def _build_chat(self, settings: Settings) -> None:
        """Google Chat: the messenger and the private-conversation port from the service account, the events handler."""
        from bot.gchat.app import ChatApp
        from bot.gchat import render
        from bot.gchat.auth import ChatVerifier
        from bot.gchat.conversations import ChatConversations
        from bot.gchat.messenger import ChatMessenger

        missing = settings.missing_for_chat()
        if missing:
            raise ValueError(f"the policy's platform is google_chat but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set")
        assert settings.google_application_credentials is not None and settings.google_chat_audience is not None
        self.client = None
        # Chat profiles carry no phone number: mobiles come from the policy's staff directory only.
        self.phones = NoProfilePhones()
        self.ctx = Ctx(self.store, self.policy, self.clock, lookup_phone=self.phones)
        # Message ids are derived from outbox keys: mixed with this database's own id, two databases never share one.
        self.messenger = ChatMessenger.from_service_account_file(
            str(settings.google_application_credentials), settings.chat_api_url, key_namespace=self.store.install_id(),
            names=render.staff_names(self.policy),
        )
        self.dispatcher = Dispatcher(self.store, self.messenger, self.clock, may_send=self._may_send)
        self.ctx.direct.post = self.messenger.post
        self.ctx.open_private_conversation = ChatConversations.from_service_account_file(
            str(settings.google_application_credentials), settings.chat_api_url, self.policy.confidential_fallback_space
        )
        self.chat_app = ChatApp(self.ctx, ChatVerifier(settings.google_chat_audience, settings.chat_certs_url))
        self.chat_app.public_url = settings.public_url

    def _build_slack(self, settings: Settings, process_before_response: bool) -> None:
        """Slack: the watched Web API client, profile phones, Bolt and its listeners, the gate before them."""
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        # Every answer the outbox (and the rest) gets tells /healthz whether Slack is reachable and takes the token.
        self.client = WatchedClient(
            watch=self.slack,
            token=token,
            base_url=settings.api_url,
            timeout=10,
            retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
        )
        self.phones = ProfilePhones(settings.api_url, token)
        self.ctx = Ctx(self.store, self.policy, self.clock, lookup_phone=self.phones)
        self.dispatcher = Dispatcher(
            self.store, SlackMessenger(self.client), self.clock, may_send=self._may_send
        )
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
        # Slash commands are answered as soon as their (local) work is done, without Bolt's 10 ms ack poll;
        # whatever must call Slack runs after the answer, on this pool (Bolt's lazy listeners).
        self.app = App(
            # A client without a token and our own authorize: Bolt's default asks auth.test on the first
            # request and, if Slack is down then, answers every command (an SOS too) with "reinstall the app".
            client=WebClient(base_url=settings.api_url, timeout=10, retry_handlers=self.client.retry_handlers),
            authorize=lambda enterprise_id, team_id: self._authorize(enterprise_id, team_id),  # Bolt reads the names
            signing_secret=secret,
            process_before_response=process_before_response,
            listener_executor=self.lazy,
            # Start even while Slack is unreachable: the sweep and the outbox must keep running.
            token_verification_enabled=False,
        )
        register(self.app, self.ctx)
        self._slack_handler = SlackRequestHandler(self.app)
        # Learned once here, before serving and outside any transaction.
        self.identity = Identity(self.client, settings.slack_team_id, settings.slack_app_id)
        self.identity.learn()
        self.gate = Gate(self.store, secret, self.identity)
        self.ctx.direct.post = SlackMessenger(self.client).post
        self.ctx.open_private_conversation = SlackConversations(self.client)

    def _authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult | None:
        """Bolt's authorization without a remote call: the one bot token (the gate has checked the workspace)."""
        if not self.client.token:
            return None
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=self.client.token)

    # The scheduler ---------------------------------------------------------

    def tick(self, woken: bool = False) -> None:
        """One sweep, then deliver what it queued (`woken`: run by the wake-up, not the periodic scheduler)."""
        self.check_slack_in_background()  # only after a bad check, at most once a minute
        with self._tick_lock:
            started = self.clock()
            try:
                # A write probe each tick: while the database cannot be written, alerts go out directly.
                self.db_unwritable = self.store.probe_write(self.clock())
                if self.db_unwritable:
                    escalate_directly(self.ctx, self.holder)
                    return
                stepped = self.check_clock()
                if not woken and stepped is None:
                    self._count_missed(started)
                record_direct_sos(self.ctx)
                done = sweep(self.ctx, self.holder)
                self.dispatcher.drain()
                # An alert refused outright just now goes to its other audiences in this same tick.
                if not done.get("skipped") and fall_back(self.ctx) + arm_texts(self.ctx):
                    self.dispatcher.drain()
            except Exception as exc:  # noqa: BLE001 - a failed tick must not stop the next one; /healthz shows its age
                log_failure(log, "sweep", exc)
            finally:
                # Also how a process that has just taken over the lease, or seen a clock step, plans at once.
                self.wakeup.ticked(started)

    def _committed(self) -> None:
        """After a commit: deliver what it queued, and have the wake-up plan again (its timers may now be sooner)."""
        self.dispatcher.wake()
        self.wakeup.poke()

    def _next_due(self, after: datetime | None) -> datetime | None:
        """The next moment the sweep must run, for the wake-up; None unless this process holds the sweep lease."""
        if self.store.read().lease_holder(LEASE) != self.holder:
            return None
        return next_due_moment(self.ctx, after)

    def _count_missed(self, started: datetime) -> None:
        """A periodic tick finding a timer overdue that the wake-up should have run: logged and counted for /healthz."""
        after = self.wakeup.after
        if not self.wakeup.planned or after is None or self.store.read().lease_holder(LEASE) != self.holder:
            return
        missed = missed_between(self.ctx, after, started - WAKE_GRACE)
        if missed:
            self.wakeup.missed += missed
            log.warning("the periodic sweep found %d timers more than %.0f s overdue that the wake-up should have run", missed, WAKE_GRACE.total_seconds())

    def check_clock(self) -> timedelta | None:
        """Compare the wall clock with the monotonic clock since the last tick; handle a step if they disagree."""
        wall, mono = self.clock(), self.monotonic()
        last, self._last_reading = self._last_reading, (wall, mono)
        if last is None:
            return None
        size = (wall - last[0]) - timedelta(seconds=mono - last[1])
        if abs(size) <= STEP_TOLERANCE:
            return None
        way = "forward" if size > timedelta(0) else "back"
        log.warning("wall clock stepped %s by %.0f s (now %s); re-timing the safety net", way, abs(size.total_seconds()), wall.isoformat())
        clock_stepped(self.ctx, self.holder, size, last[0], MAX_BACKOFF)
        return size

    def _may_send(self) -> bool:
        """Whether the outbox may deliver: this process holds the lease, and can record what it sent."""
        try:
            return holds_lease(self.ctx, self.holder)
        except NotWritable:
            # A delivery that cannot be marked sent would be sent again: the alerts go out directly instead.
            return False

    def reclaim_lease_of_dead_process(self) -> bool:
        """After a crash on this machine, take over at once instead of waiting for the lease to expire."""
        with self.store.transaction() as tx:
            holder = tx.lease_holder(LEASE)
            if holder is None or holder == self.holder:
                return False
            host, _, rest = holder.partition(":")
            pid = rest.partition(":")[0]
            if host != socket.gethostname() or not pid.isdigit() or _alive(int(pid)):
                return False
            released = tx.release_lease(LEASE, holder)
        if released:
            log.warning("took over the sweep from process %s on this machine, which is no longer running", pid)
        return released

    def check_slack(self) -> None:
        """The doctor's checks, logged and kept for /healthz (blocking: call it off the sweep's path)."""
        run_and_log(self.client, self.policy, self.slack.checked)

    def check_slack_in_background(self, first: bool = False) -> None:
        """Start the doctor's checks on their own thread, if one is due: a Slack outage never holds up the sweep."""
        if self.on_chat:
            return  # the doctor checks Slack only
        if self.slack.claim_check(first):
            threading.Thread(target=self.check_slack, name="visitsafe-doctor", daemon=True).start()

    def start_background(self) -> None:
        """Catch up at once, then tick every sweep_interval; deliver in the background."""
        self.check_slack_in_background(first=True)
        self.reclaim_lease_of_dead_process()
        self.warm_phones()
        self.dispatcher.start()
        self.tick()  # everything that fell due while the bot was down
        self.wakeup.start()
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.policy.sweep_interval.total_seconds(),
            id=SWEEP_JOB,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self.scheduler.start()

    def stop(self) -> None:
        """Stop background work."""
        self.wakeup.stop()
        if self.scheduler:
            self.scheduler.shutdown(wait=False)
        self.dispatcher.stop()
        self.phones.stop()
        self.lazy.shutdown(wait=False)

    def warm_phones(self) -> None:
        """Look up, in the background, everyone the policy names and everyone out on a visit now."""
        named = [*(user for role in Role for user in self.policy.roles.holders(role)), *self.policy.staff]
        out = [user for visit in self.store.read().visits_where("state IN ('out', 'overdue', 'emergency')", []) for user in visit.team]
        self.phones.want(dict.fromkeys([*named, *out]))

    def settle(self) -> None:
        """Let the Slack calls after an answer and the profile lookups under way finish (briefly), then deliver
        what is due: for tests and the demo."""
        self.lazy.wait_idle(LAZY_SETTLE_S)
        self.phones.wait_idle(self.phones.TIMEOUT_S + 1)
        self.dispatcher.drain()

    # Health ----------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """The database, the scheduler's last sweep, steps past their time and the outbox, as a small status."""
        now = self.clock()
        status: dict[str, Any] = {"school": self.policy.school}
        healthy = True
        try:
            tx = self.store.read()
            last = tx.last_beat("sweep")
            status["database"] = f"not writable: {self.db_unwritable}" if self.db_unwritable else "ok"
            status["outbox"] = tx.outbox_health(now, self.policy.delivery_fallback_after.total_seconds())
            # Which alerts wait, and why: ids and Slack's error code only, never text or numbers.
            status["outbox"]["waiting_alerts"] = tx.waiting_alerts(now)
            # A step far past its time is itself an alarm: the sweep is not keeping up.
            status["late_steps"] = tx.late_steps(now - 2 * self.policy.sweep_interval)
            status["clock"] = self._clock_health(tx, now)
        except Exception as exc:  # noqa: BLE001 - health must answer even when the database cannot
            return False, {**status, "database": f"error: {type(exc).__name__}"}
        limit = 3 * self.policy.sweep_interval.total_seconds()
        age = None if last is None else (now - last).total_seconds()
        fresh = age is not None and age <= limit
        status["scheduler"] = {
            "running": bool(self.scheduler and self.scheduler.running),
            "last_sweep": last.isoformat() if last else None,
            "age_seconds": None if age is None else round(age, 1),
        }
        # missed: timers the periodic tick caught more than WAKE_GRACE late (the wake-up should have run them).
        due = self.wakeup.due_at
        status["wake_up"] = {"next_due_at": due.isoformat() if due else None, "woke": self.wakeup.woke, "missed": self.wakeup.missed}
        stuck = any(
            a["refused"] or a["waiting_seconds"] > self.policy.delivery_fallback_after.total_seconds()
            for a in status["outbox"]["waiting_alerts"]
        )
        # A token Slack refuses or a Slack it cannot reach means alerts cannot be delivered: never 200 "ok".
        status["platform"] = self.policy.platform
        if not self.on_chat:
            status["slack"] = self.slack.state or "unknown"
            status["setup_problems"] = list(self.slack.problems)
            if status["slack"] != OK or status["setup_problems"]:
                healthy = False
        if self.notify_watch is not None:
            # Notify's last answer as a code (e.g. "400 invalid_recipient"); which text waits is in waiting_alerts.
            status["notify"] = {"state": self.notify_watch.state, "sent": self.notify_watch.sent, "failures": self.notify_watch.failures}
        if self.db_unwritable or not fresh or status["clock"]["degraded"] or status["late_steps"] or status["outbox"]["late"] or status["outbox"]["failed"] or stuck:
            healthy = False
        status["status"] = "ok" if healthy else "degraded"
        return healthy, status

    @staticmethod
    def _clock_health(tx: Any, now: datetime) -> dict[str, Any]:
        """Clock steps of the last day, and a forward step not yet put right (alerts may be early)."""
        steps = tx.clock_steps_since(now - STEP_SHOWN_FOR)
        offset = tx.clock_offset()
        recent = any(abs(now - step["wall_after"]) <= STEP_DEGRADES_FOR for step in steps)
        return {
            "steps_last_day": [
                {"seconds": round(step["seconds"], 1), "wall_before": step["wall_before"].isoformat(), "wall_after": step["wall_after"].isoformat()}
                for step in steps
            ],
            "ahead_by_seconds": None if offset is None else round(offset[0], 1),
            "degraded": bool(recent or offset),
        }

    # HTTP ------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The HTTP routes: POST /slack/events (or POST /gchat/events on Google Chat), GET /healthz."""
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            healthy, status = self.health()
            body = json.dumps(status).encode()
            start_response("200 OK" if healthy else "503 Service Unavailable", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/gchat/events" and self.chat_app is not None:
            return self.chat_app(environ, start_response)
        if path == "/slack/events" and environ.get("REQUEST_METHOD") == "POST" and self.gate is not None:
            refusal = self.gate.check(environ)
            if refusal is not None:
                body = refusal.reason.encode()
                start_response(refusal.status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
                return [body]
            return self._slack_handler(environ, start_response)
        if environ.get("REQUEST_METHOD") == "GET" and (path == "/calendar.ics" or path.startswith("/downloads/")):
            return self._file_route(environ, start_response, path)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found"]

    def _file_route(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> Iterable[bytes]:
        """GET /calendar.ics?token=… (the school calendar) and GET /downloads/<secret> (a file kept for one person, once).

        A wrong, missing or used secret is answered exactly like an unknown path: nothing says the route exists.
        """
        from urllib.parse import parse_qs

        from bot import calendar
        from commands import exports

        headers: list[tuple[str, str]] = [("Cache-Control", "private, no-store"), ("X-Content-Type-Options", "nosniff")]
        try:
            if path == "/calendar.ics":
                token = (parse_qs(environ.get("QUERY_STRING") or "").get("token") or [""])[0]
                body, headers = calendar.feed(self.ctx, token), headers + [("Content-Type", "text/calendar; charset=utf-8")]
            else:
                found = exports.take_download(self.ctx, path[len("/downloads/"):])
                body = found[2] if found else None
                if found:
                    headers += [("Content-Type", found[1]), ("Content-Disposition", f'attachment; filename="{found[0]}"')]
        except Exception as exc:  # noqa: BLE001 - a failed read answers 500 without a trace of what it held
            log_failure(log, path.split("/")[1] or "file route", exc)
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"Internal Server Error"]
        if body is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not Found"]
        start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
        return [body]
