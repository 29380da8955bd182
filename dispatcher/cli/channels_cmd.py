"""`nightshift channels add|list|test|disable`: where notifications go."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from dispatcher.cli import add_database_url
from dispatcher.cli.notify_cmd import with_store
from dispatcher.errors import NotFound, UsageError
from dispatcher.notify.channels import ChannelError, Outgoing, build
from dispatcher.notify.render import Renderer
from dispatcher.notify.sender import DEFAULT_CHANNEL
from dispatcher.notify.store import NotifyStore

KINDS = ("slack", "webhook", "email", "log")


def register(subparsers: argparse._SubParsersAction) -> None:
    channels = subparsers.add_parser(
        "channels", help="add, list, test and disable notification channels",
        description="A channel is where a schedule's notifications go (schedules.notification_channel "
        "names one). Secrets are given as references, env:NAME or file:/path, resolved by the sender "
        "when it sends: the database, logs and this command's output never hold them.")
    commands = channels.add_subparsers(title="commands", metavar="COMMAND", required=True)

    add = commands.add_parser(
        "add", help="add a channel",
        description="Examples:\n"
        "  nightshift channels add ops-slack --kind slack --url env:SLACK_WEBHOOK_URL\n"
        "  nightshift channels add hooks --kind webhook --url https://ci.example.com/hook "
        "--secret file:/etc/nightshift/hook-key\n"
        "  nightshift channels add ops-mail --kind email --smtp-host smtp.example.com "
        "--username nightshift --password env:SMTP_PASSWORD --from nightshift@example.com "
        "--to ops@example.com --digest daily\n"
        "  nightshift channels add default --kind log",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_url(add)
    add.add_argument("name", metavar="NAME", help="what schedules.notification_channel names")
    add.add_argument("--kind", required=True, choices=KINDS)
    add.add_argument("--url", metavar="URL|REF",
                     help="slack: env:NAME or file:/path holding the incoming webhook URL; "
                     "webhook: the URL, or a reference when it is a secret")
    add.add_argument("--secret", metavar="REF",
                     help="webhook: the HMAC key's reference (env:NAME or file:/path)")
    add.add_argument("--smtp-host", metavar="HOST")
    add.add_argument("--smtp-port", type=int, metavar="PORT",
                     help="default 587 (starttls), 465 (tls), 25 (none)")
    add.add_argument("--security", choices=("starttls", "tls", "none"), default="starttls")
    add.add_argument("--username")
    add.add_argument("--password", metavar="REF", help="SMTP password's reference (env:NAME or file:/path)")
    add.add_argument("--from", dest="sender", metavar="ADDRESS")
    add.add_argument("--to", action="append", default=[], metavar="ADDRESS",
                     help="a recipient (repeatable, or comma-separated)")
    add.add_argument("--timeout", type=float, metavar="SECONDS", help="per send (default 10; email 20)")
    add.add_argument("--digest", choices=("hourly", "daily"),
                     help="collect notifications and send one message per hour or day (UTC)")
    add.add_argument("--min-interval", type=float, default=1.0, metavar="SECONDS",
                     help="at most one message per this many seconds; more are grouped (default 1, "
                     "Slack's rate)")
    add.add_argument("--organization", metavar="NAME",
                     help="the organization it belongs to (default: shared)")
    add.set_defaults(func=run_add)

    list_parser = commands.add_parser("list",
                                      help="every channel with its settings (references, never secrets)")
    add_database_url(list_parser)
    list_parser.add_argument("--json", action="store_true")
    list_parser.set_defaults(func=run_list)

    test = commands.add_parser("test", help="send a real test message and print what the endpoint answered")
    add_database_url(test)
    test.add_argument("name", metavar="NAME")
    test.set_defaults(func=run_test)

    disable = commands.add_parser("disable", help="stop sending to a channel (its notifications fail "
                                  "with 'disabled' and can be retried once it is enabled)")
    add_database_url(disable)
    disable.add_argument("name", metavar="NAME")
    disable.add_argument("--enable", action="store_true", help="enable it again instead")
    disable.set_defaults(func=run_disable)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if args.kind == "slack":
        settings["webhook_url"] = args.url
    elif args.kind == "webhook":
        settings.update(url=args.url, secret=args.secret)
    elif args.kind == "email":
        settings.update(host=args.smtp_host, port=args.smtp_port, security=args.security,
                        username=args.username, password=args.password, **{"from": args.sender},
                        to=[a.strip() for value in args.to for a in value.split(",") if a.strip()])
    if args.timeout is not None:
        settings["timeout"] = args.timeout
    return {key: value for key, value in settings.items() if value not in (None, [], "")}


def run_add(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    try:
        build(args.kind, args.name, settings, Renderer())
    except ChannelError as exc:  # a missing setting, a plain secret: the command's input
        raise UsageError(str(exc)) from None
    if args.min_interval < 0:
        raise UsageError("--min-interval must not be negative")
    channel_id = with_store(args.database_url, lambda s: s.add_channel(
        args.name, args.kind, settings, args.digest, args.min_interval, args.organization))
    if channel_id is None:
        raise NotFound(f"no organization named {args.organization!r}")
    print(f"channel {args.name} ({args.kind}) added: id {channel_id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    rows = with_store(args.database_url, lambda s: s.list_channels())
    if args.json:
        for row in rows:
            print(json.dumps({"name": row.name, "kind": row.kind, "settings": row.settings,
                              "digest": row.digest, "min_interval": row.min_interval,
                              "is_active": row.is_active, "organization": row.organization}))
        return 0
    print(f"{'NAME':<20} {'KIND':<8} {'ACTIVE':<6} {'DIGEST':<7} {'INTERVAL':>8}  SETTINGS")
    for row in rows:
        print(f"{row.name[:20]:<20} {row.kind:<8} {'yes' if row.is_active else 'no':<6} "
              f"{row.digest or '-':<7} {row.min_interval:>7g}s  {json.dumps(row.settings, sort_keys=True)}")
    if not any(row.name == DEFAULT_CHANNEL.name for row in rows):
        print(f"{'default':<20} {'log':<8} {'yes':<6} {'-':<7} {0:>7g}s  "
              "(implicit: no channel named default)")
    return 0


def run_test(args: argparse.Namespace) -> int:
    async def go(store: NotifyStore) -> tuple[str, Any]:
        row = (await store.channels([args.name])).get(args.name)
        if row is None and args.name == DEFAULT_CHANNEL.name:
            row = DEFAULT_CHANNEL
        if row is None:
            raise NotFound(f"no channel named {args.name!r} (see `nightshift channels list`)")
        renderer = Renderer()
        channel = build(row.kind, row.name, row.settings, renderer)
        message = renderer.render(0, "test", {
            "channel": row.name, "kind": row.kind,
            "sent_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")})
        try:
            return row.kind, await channel.send(Outgoing(channel=row.name, messages=[message]))
        finally:
            await channel.close()

    kind, delivery = with_store(args.database_url, go)
    if delivery.ok:
        answer = delivery.response or "(nothing)"
        print(f"channel {args.name} ({kind}): sent; the endpoint answered: {answer}")
        return 0
    when = " (a later try may succeed)" if delivery.retry else ""
    print(f"channel {args.name} ({kind}): NOT sent{when}: {delivery.error}")
    return 1


def run_disable(args: argparse.Namespace) -> int:
    if not with_store(args.database_url, lambda s: s.set_active(args.name, args.enable)):
        raise NotFound(f"no channel named {args.name!r}")
    print(f"channel {args.name} {'enabled' if args.enable else 'disabled'}")
    return 0
