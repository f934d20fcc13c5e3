"""Wires one running bot: store, Slack app, outbox dispatcher, scheduler, and the HTTP routes."""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime
from typing import Any, Callable, Iterable

from apscheduler.schedulers.background import BackgroundScheduler
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot.clock import system_clock
from commands.logsafe import log_failure
from bot.outbox import Dispatcher
from bot.settings import Settings
from bot.slack.gate import Gate, Identity
from bot.slack.listeners import register
from bot.slack.messenger import SlackMessenger
from commands.context import Ctx
from commands.sweep import LEASE, fall_back, holds_lease, sweep
from flows.policy import Policy
from storage.store import Store

log = logging.getLogger("visitsafe")

SWEEP_JOB = "visitsafe-sweep"


def _alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProfilePhones:
    """Staff mobiles from Slack profiles, cached; a slow or failing lookup gives None, never an error."""

    TTL_S = 3600.0
    MISS_TTL_S = 60.0

    def __init__(self, client: WebClient):
        self.client = client
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, user: str) -> str | None:
        with self._lock:
            hit = self._cache.get(user)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        try:
            profile = self.client.users_info(user=user)["user"].get("profile", {})
            phone = profile.get("phone") or None
            ttl = self.TTL_S
        except Exception:  # noqa: BLE001 - an alert must go out with or without the number
            phone, ttl = (hit[1] if hit else None), self.MISS_TTL_S
        with self._lock:
            self._cache[user] = (time.monotonic() + ttl, phone)
        return phone


class Runtime:
    """Everything one process runs, built from settings, a policy and a clock."""

    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        clock: Callable[[], datetime] = system_clock,
        process_before_response: bool = False,
    ):
        self.settings = settings
        self.policy = policy
        self.clock = clock
        self.store = Store(settings.visitsafe_db, policy)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        self.client = WebClient(
            token=token,
            base_url=settings.api_url,
            timeout=10,
            retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
        )
        self.ctx = Ctx(self.store, policy, clock, lookup_phone=ProfilePhones(self.client))
        self.dispatcher = Dispatcher(
            self.store, SlackMessenger(self.client), clock, may_send=lambda: holds_lease(self.ctx, self.holder)
        )
        self.ctx.wake = self.dispatcher.wake
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
        self.app = App(
            client=self.client,
            signing_secret=secret,
            process_before_response=process_before_response,
            # Start even while Slack is unreachable: the sweep and the outbox must keep running.
            token_verification_enabled=False,
        )
        register(self.app, self.ctx)
        self._slack_handler = SlackRequestHandler(self.app)
        # Learned once here, before serving and outside any transaction.
        self.identity = Identity(self.client, settings.slack_team_id, settings.slack_app_id)
        self.identity.learn()
        self.gate = Gate(self.store, secret, self.identity)
        self.scheduler: BackgroundScheduler | None = None
        self._tick_lock = threading.Lock()

    # The scheduler ---------------------------------------------------------

    def tick(self) -> None:
        """One sweep, then deliver what it queued."""
        with self._tick_lock:
            try:
                done = sweep(self.ctx, self.holder)
                self.dispatcher.drain()
                # An alert refused outright just now goes to its other audiences in this same tick.
                if not done.get("skipped") and fall_back(self.ctx):
                    self.dispatcher.drain()
            except Exception as exc:  # noqa: BLE001 - a failed tick must not stop the next one; /healthz shows its age
                log_failure(log, "sweep", exc)

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

    def start_background(self) -> None:
        """Catch up at once, then tick every sweep_interval; deliver in the background."""
        self.reclaim_lease_of_dead_process()
        self.dispatcher.start()
        self.tick()  # everything that fell due while the bot was down
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
        if self.scheduler:
            self.scheduler.shutdown(wait=False)
        self.dispatcher.stop()

    # Health ----------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """The database, the scheduler's last sweep, steps past their time and the outbox, as a small status."""
        now = self.clock()
        status: dict[str, Any] = {"school": self.policy.school}
        healthy = True
        try:
            tx = self.store.read()
            last = tx.last_beat("sweep")
            status["database"] = "ok"
            status["outbox"] = tx.outbox_health(now, self.policy.delivery_fallback_after.total_seconds())
            # A step far past its time is itself an alarm: the sweep is not keeping up.
            status["late_steps"] = tx.late_steps(now - 2 * self.policy.sweep_interval)
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
        if not fresh or status["late_steps"] or status["outbox"]["late"] or status["outbox"]["failed"]:
            healthy = False
        status["status"] = "ok" if healthy else "degraded"
        return healthy, status

    # HTTP ------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The HTTP routes: POST /slack/events, GET /healthz."""
        path = environ.get("PATH_INFO", "")
        if path == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            healthy, status = self.health()
            body = json.dumps(status).encode()
            start_response("200 OK" if healthy else "503 Service Unavailable", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if path == "/slack/events" and environ.get("REQUEST_METHOD") == "POST":
            refusal = self.gate.check(environ)
            if refusal is not None:
                body = refusal.reason.encode()
                start_response(refusal.status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
                return [body]
            return self._slack_handler(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found"]
