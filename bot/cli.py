"""The `visitsafe` command: run, serve, demo, check-config."""
from __future__ import annotations

import argparse
import logging
import signal
import threading
import sys
from pathlib import Path
from typing import Callable

from pydantic import ValidationError

from bot.settings import APP_PREFIX, BOT_PREFIX, WHERE_TO_FIND, Settings
from flows.durations import format_duration
from flows.policy import PLACEHOLDER, Policy, PolicyError, describe_hours, load_policy

log = logging.getLogger("visitsafe")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        print(f"visitsafe: environment variable {str(error['loc'][0]).upper()}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def _policy(path: Path, example: bool = False) -> Policy:
    try:
        policy = load_policy(path, example=example)
    except PolicyError as exc:
        print(f"visitsafe: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # Every mobile is parsed now (phonenumbers, UK by default): a bad one is found here, not when an SMS must go.
    from bot.notify.numbers import bad_mobiles

    problems = bad_mobiles(policy)
    for problem in problems:
        print(f"visitsafe: {path}: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(2)
    return policy


def missing_tokens_message(missing: list[str], socket_mode: bool) -> str:
    """Which Slack variables are missing, where to find each, and what to try meanwhile: Socket Mode first (the manifest's way)."""
    if socket_mode or missing != ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]:
        lines = [f"visitsafe: cannot connect to Slack: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set."]
    else:  # nothing set at all: name both routes' variables, Socket Mode's first
        lines = ["visitsafe: cannot connect to Slack: SLACK_BOT_TOKEN is not set, nor SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP)."]
    lines.append("Create the Slack app from app_manifest.yml (api.slack.com/apps > Create New App > From an app manifest) and install it.")
    if socket_mode:
        lines.append("Then set:")
        lines += [f"  {name}: {WHERE_TO_FIND[name]}" for name in missing]
    else:
        lines.append("It connects by Socket Mode (no public address needed). Set:")
        lines += [f"  {name}: {WHERE_TO_FIND[name]}" for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN")]
        lines.append("Or, to receive Slack's requests over HTTPS at a public address instead (Socket Mode off in the app), set")
        lines.append(f"  SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET: {WHERE_TO_FIND['SLACK_SIGNING_SECRET']}")
    lines.append("To see a whole visit without Slack first, run: visitsafe demo")
    return "\n".join(lines)


def token_mistakes(settings: Settings) -> list[str]:
    """A bot token pasted where the App-Level Token goes, or the other way round."""
    bot = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    app = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    mistakes = []
    if app.startswith(BOT_PREFIX):
        mistakes.append(f"visitsafe: SLACK_APP_TOKEN holds a Bot User OAuth Token ({BOT_PREFIX}...): that one goes in SLACK_BOT_TOKEN."
                        f" SLACK_APP_TOKEN takes the App-Level Token ({APP_PREFIX}...): {WHERE_TO_FIND['SLACK_APP_TOKEN']}.")
    if bot.startswith(APP_PREFIX):
        mistakes.append(f"visitsafe: SLACK_BOT_TOKEN holds an App-Level Token ({APP_PREFIX}...): that one goes in SLACK_APP_TOKEN."
                        f" SLACK_BOT_TOKEN takes the Bot User OAuth Token ({BOT_PREFIX}...): {WHERE_TO_FIND['SLACK_BOT_TOKEN']}.")
    return mistakes


def socket_mode_failure(exc: Exception, api_url: str) -> str:
    """One readable line for a Socket Mode connection that failed."""
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError) and isinstance(exc.response.data, dict) and exc.response.get("error"):
        error = exc.response["error"]
        if error in ("invalid_auth", "not_authed", "not_allowed_token_type", "token_revoked", "account_inactive"):
            return (f"visitsafe: Socket Mode could not connect: Slack refused SLACK_APP_TOKEN ({error}):"
                    f" {WHERE_TO_FIND['SLACK_APP_TOKEN']}, and check Socket Mode is on (api.slack.com/apps > your app > Socket Mode).")
        return f"visitsafe: Socket Mode could not connect: Slack answered {error}. Check Socket Mode is on (api.slack.com/apps > your app > Socket Mode)."
    return (f"visitsafe: Socket Mode could not connect: Slack could not be reached at {api_url} ({type(exc).__name__}):"
            " check this machine's internet access (and proxy); no public address is needed, only outgoing HTTPS.")


def _serve(settings: Settings, policy: Policy, host: str, port: int) -> int:
    from bot.heap import freeze_startup_heap
    from bot.runtime import Runtime
    from bot.serving import Server

    runtime = Runtime(settings, policy)
    runtime.start_background()
    freeze_startup_heap()
    server = Server(runtime.wsgi, host=host, port=port)
    route = "/gchat/events" if policy.platform == "google_chat" else "/slack/events"
    log.info("VisitSafe for %s serving on http://%s:%s (%s, /healthz)", policy.school, host, server.port, route)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()
    return 0


def missing_chat_message(missing: list[str]) -> str:
    """Which Google Chat variables are missing and where each comes from."""
    where = {
        "GOOGLE_CHAT_AUDIENCE": "the Cloud project number (console.cloud.google.com > the project > Dashboard), or the app's"
                                " endpoint URL if the Chat API's configuration sets the authentication audience to it",
        "GOOGLE_APPLICATION_CREDENTIALS": "the path of the service account's JSON key file (IAM & Admin > Service accounts >"
                                          " the app's account > Keys > Add key)",
    }
    lines = [f"visitsafe: cannot serve Google Chat (the policy says platform: google_chat): {', '.join(missing)}"
             f" {'is' if len(missing) == 1 else 'are'} not set. Set:"]
    lines += [f"  {name}: {where[name]}" for name in missing]
    lines.append("Google Chat reaches VisitSafe over HTTPS only: serve POST /gchat/events at the app's public address.")
    return "\n".join(lines)


def _serve_chat(settings: Settings, policy: Policy, host: str, port: int) -> int:
    """Google Chat: HTTP only (no Socket Mode), once its variables are set."""
    missing = settings.missing_for_chat()
    if missing:
        print(missing_chat_message(missing), file=sys.stderr)
        return 2
    key = settings.google_application_credentials
    if key is not None and not key.is_file():
        print(f"visitsafe: GOOGLE_APPLICATION_CREDENTIALS is {str(key)!r}, which is not a file: set it to the path of the"
              " service account's JSON key file", file=sys.stderr)
        return 2
    return _serve(settings, policy, host, port)


def cmd_run(args: argparse.Namespace) -> int:
    """Connect to Slack: Socket Mode when SLACK_APP_TOKEN is set, otherwise HTTP on $PORT (Google Chat: HTTP)."""
    settings = _settings()
    if settings.visitsafe_config.exists():
        policy = _policy(settings.visitsafe_config, args.example)
        if policy.platform == "google_chat":
            return _serve_chat(settings, policy, args.host, settings.port)
    mistakes = token_mistakes(settings)
    if mistakes:
        print("\n".join(mistakes), file=sys.stderr)
        return 2
    socket_mode = settings.slack_app_token is not None
    missing = settings.missing_for(socket_mode)
    if missing:
        print(missing_tokens_message(missing, socket_mode), file=sys.stderr)
        return 2
    policy = _policy(settings.visitsafe_config, args.example)
    if not socket_mode:
        return _serve(settings, policy, args.host, settings.port)
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.heap import freeze_startup_heap
    from bot.runtime import Runtime
    from bot.serving import Server

    runtime = Runtime(settings, policy)
    runtime.start_background()
    freeze_startup_heap()
    health = Server(runtime.wsgi, host=args.host, port=settings.port).start()
    assert settings.slack_app_token is not None
    try:
        handler = SocketModeHandler(runtime.app, settings.slack_app_token.get_secret_value())
        try:
            handler.connect()
        except Exception as exc:  # noqa: BLE001 - one readable line, not a traceback
            print(socket_mode_failure(exc, settings.api_url), file=sys.stderr)
            return 1
        log.info("VisitSafe for %s connected by Socket Mode; /healthz on port %s", policy.school, health.port)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        handler.close()
    finally:
        health.stop()
        runtime.stop()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve HTTP on a given port."""
    settings = _settings()
    port = args.port if args.port is not None else settings.port
    if settings.visitsafe_config.exists():
        policy = _policy(settings.visitsafe_config, args.example)
        if policy.platform == "google_chat":
            return _serve_chat(settings, policy, args.host, port)
    missing = settings.missing_for(socket_mode=False)
    if missing:
        print(missing_tokens_message(missing, socket_mode=False), file=sys.stderr)
        return 2
    port = args.port if args.port is not None else settings.port
    return _serve(settings, _policy(settings.visitsafe_config, args.example), args.host, port)


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a policy file without starting anything."""
    path = Path(args.file) if args.file else _settings().visitsafe_config
    policy = _policy(path, args.example)
    ladder = ", ".join(f"{format_duration(t.after)} {'+'.join(t.notify)}" for t in policy.escalation)
    summary = f"{policy.school}; {len(policy.escalation)} escalation tiers ({ladder})."
    if policy.office_hours is not None:
        summary += f" Office hours {describe_hours(policy.office_hours)}; out of hours the office's tier goes to {', '.join(policy.cover)} too."
    if args.example and PLACEHOLDER in path.read_text(encoding="utf-8"):
        # Never "OK" for a file that could not alert anyone.
        print(f"{path}: valid as an example, NOT ready to run: replace every *{PLACEHOLDER} id with the real one. {summary}")
    else:
        print(f"{path}: OK. {summary}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check, against Slack, that the bot can reach everyone the policy says it must alert; 1 if not."""
    from slack_sdk import WebClient

    from bot.doctor import Doctor

    settings = _settings()
    policy = _policy(settings.visitsafe_config)
    if policy.platform == "google_chat":
        return _chat_doctor(settings, policy)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    found = Doctor(WebClient(token=token, base_url=settings.api_url, timeout=10), policy).run()
    for problem in found.problems:
        print(f"PROBLEM {problem}")
    if found.ok:
        print(f"OK: Slack takes the token; the office and safeguarding channels are private with the bot in them;"
              f" everyone {policy.school}'s policy names is an active person, and everyone it alerts can be sent a direct message.")
        return 0
    print(f"visitsafe doctor: {len(found.problems)} problem{'s' if len(found.problems) != 1 else ''} (Slack: {found.slack}): alerts may not reach everyone.", file=sys.stderr)
    return 1


def _chat_doctor(settings: Settings, policy: Policy) -> int:
    """On Google Chat: everyone an approval or alert must reach has a direct message with the app."""
    from bot.gchat.doctor import chat_problems
    from bot.gchat.messenger import ChatMessenger

    if not settings.google_application_credentials:
        print("visitsafe doctor: GOOGLE_APPLICATION_CREDENTIALS is not set: the service account key VisitSafe sends with.", file=sys.stderr)
        return 2
    messenger = ChatMessenger.from_service_account_file(str(settings.google_application_credentials), settings.chat_api_url)
    problems = chat_problems(messenger, policy)
    for problem in problems:
        print(f"PROBLEM {problem}")
    if not problems:
        print(f"OK: everyone {policy.school}'s policy must reach has added VisitSafe in Google Chat.")
        return 0
    print(f"visitsafe doctor: {len(problems)} problem{'s' if len(problems) != 1 else ''}: alerts may not reach everyone directly.", file=sys.stderr)
    return 1


def cmd_demo(args: argparse.Namespace) -> int:
    """Play a whole visit against a simulated workspace and show what each person saw."""
    from bot.demo import run_demo

    return run_demo(verbose=args.verbose, overdue=args.overdue, platform=args.platform)


def version() -> str:
    """The installed package's version (the source tree's when run uncloned)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("visitsafe")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def quiet_logs() -> None:
    """INFO means one line per command and per alert: not one per scheduler tick."""
    # APScheduler logs "Running job" and "executed successfully" at INFO on every sweep tick.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Bolt reads SLACK_BOT_TOKEN itself and warns at every start that the client we give it wins.
    from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped

    expected = warning_client_prioritized_and_token_skipped()
    logging.getLogger("slack_bolt.App").addFilter(lambda record: record.getMessage() != expected)


EXAMPLE_HELP = "accept the examples' *_CHANGE_ME placeholder ids (for trying an example file only; default: refuse them)"
HOST_HELP = "address to listen on (default: %(default)s, for a TLS proxy on this machine; 0.0.0.0 listens on every interface)"


def _listens(parser: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """The options of the commands that start the bot."""
    parser.add_argument("--host", default="127.0.0.1", help=HOST_HELP)
    parser.add_argument("--example", action="store_true", help=EXAMPLE_HELP)
    parser.set_defaults(func=func)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `visitsafe` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_logs()
    parser = argparse.ArgumentParser(
        prog="visitsafe",
        description="VisitSafe: a school's home-visit safety policy, in Slack.",
        epilog="Settings come from the environment: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, "
        "VISITSAFE_CONFIG (default ./visitsafe.yml), VISITSAFE_DB (default ./visitsafe.db), PORT (default 3000).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", help="connect to Slack (Socket Mode if SLACK_APP_TOKEN is set, else HTTP on $PORT)",
        description="Connect to Slack: by Socket Mode when SLACK_APP_TOKEN is set (no public address needed; "
        "/healthz on $PORT), otherwise serve Slack's HTTP requests on $PORT (default 3000). "
        "The policy is read from $VISITSAFE_CONFIG (default ./visitsafe.yml).",
    )
    _listens(run, cmd_run)
    serve = sub.add_parser(
        "serve", help="serve Slack's HTTP requests and /healthz",
        description="Serve Slack's HTTP requests on /slack/events and a health check on /healthz. "
        "The policy is read from $VISITSAFE_CONFIG (default ./visitsafe.yml).",
    )
    serve.add_argument("--port", type=int, default=None, help="port to listen on (default: $PORT, else 3000)")
    _listens(serve, cmd_serve)
    check = sub.add_parser(
        "check-config", help="validate a policy file and exit",
        description="Validate a policy file without starting anything: exit 0 and print OK if the bot could run "
        "with it, else exit 2 with one line naming the key and the fix.",
    )
    check.add_argument("file", nargs="?", help="policy file (default: $VISITSAFE_CONFIG, else ./visitsafe.yml)")
    check.add_argument("--example", action="store_true", help=EXAMPLE_HELP)
    check.set_defaults(func=cmd_check_config)
    doctor = sub.add_parser(
        "doctor", help="check against Slack that the token, scopes, channels and people in the policy can all be reached; exit 1 if not",
        description="Check against Slack that the token works, the app has its scopes, the bot is in the office and "
        "safeguarding channels and they are private, each role's people exist and are active, and each approver and "
        "alert recipient can be sent a DM. One line per problem, with the fix; exit 1 if there is any. "
        "The policy is read from $VISITSAFE_CONFIG (default ./visitsafe.yml).",
    )
    doctor.set_defaults(func=cmd_doctor)
    demo = sub.add_parser(
        "demo", help="play one whole visit against a simulated Slack workspace (no tokens, no network)",
        description="Play one whole visit against a simulated Slack workspace and print what each person saw. "
        "Needs no tokens and no network.",
    )
    demo.add_argument("--verbose", action="store_true", help="also print the bot's log (default: off)")
    demo.add_argument("--platform", choices=("slack", "google-chat"), default="slack",
                      help="play it in a simulated Slack workspace or a simulated Google Chat (default: slack)")
    demo.add_argument("--overdue", action="store_true", help="then play a second visit that runs late: missed check-in, the ladder, confirmed safe (default: off)")
    demo.set_defaults(func=cmd_demo)
    from bot.cli_exports import add_parsers  # export, report, calendar-url (issue 14)

    add_parsers(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
