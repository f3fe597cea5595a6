"""crmflow relay parked list | retry: the events the relay parked instead of publishing."""

from __future__ import annotations

import argparse

from crmflow.aggregates.limits import MAX_EVENT_BYTES
from crmflow.workers.bootstrap import build_application, build_kafka
from crmflow.workers.cli.output import fail, print_json, print_rows
from crmflow.workers.config import Settings
from crmflow.workers.kafka.parking import ParkedEvents
from crmflow.workers.kafka.relay import Relay, RelayDeliveryError

RAW = argparse.RawDescriptionHelpFormatter
COLUMNS = ("notification", "aggregate", "tenant", "topic", "reason", "waits_for", "parked_at", "retried")
# Kafka's own ceiling on one message a broker may be configured to take (message.max.bytes is an int32).
LARGEST_MAX_BYTES = 2**31 - 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    relay = sub.add_parser(
        "relay", help="look after the relay: the events it parked instead of publishing", formatter_class=RAW,
        epilog="examples:\n  crmflow relay parked list\n  crmflow relay parked retry --all",
    )  # fmt: skip
    areas = relay.add_subparsers(dest="area", required=True, metavar="AREA")
    parked = areas.add_parser(
        "parked", help="events the relay could not publish, and those of their aggregates that wait for them",
        formatter_class=RAW,
        description="An event the relay cannot encode, that is too large, or that Kafka refuses is parked, "
                    "with the reason; the later events of its aggregate are parked too, waiting for it, so "
                    "that consumers see each aggregate in order. Every other aggregate flows on.",
        epilog="examples:\n  crmflow relay parked list --format json\n"
               "  crmflow relay parked retry --notification 1207",
    )  # fmt: skip
    actions = parked.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="every parked event: notification, aggregate, tenant, reason, since when, retries",
        formatter_class=RAW,
        epilog="examples:\n  crmflow relay parked list\n"
               "  crmflow relay parked list --format json | jq '.[].reason'",
    )  # fmt: skip
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(run=run_list)
    retry = actions.add_parser(
        "retry", help="publish parked events again, in order per aggregate", formatter_class=RAW,
        description="Publishes parked events again, in notification order per aggregate. One that Kafka "
                    "acknowledges leaves the table; one that fails again stays, with the new reason and its "
                    "retry count one higher, and the later events of its aggregate keep waiting for it. "
                    "Safe while the relay runs.",
        epilog="examples:\n  crmflow relay parked retry --all\n"
               "  crmflow relay parked retry --notification 1207   # its aggregate's, from the first\n"
               "  crmflow relay parked retry --all --max-bytes 1000000   # brokers take 1 MB now",
    )  # fmt: skip
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--notification", type=positive_int, metavar="N",
                       help="the parked events of notification N's aggregate, from its first")  # fmt: skip
    which.add_argument("--all", action="store_true", help="every parked event")
    retry.add_argument("--max-bytes", type=positive_int, default=MAX_EVENT_BYTES, metavar="BYTES",
                       help=f"largest event to send (default {MAX_EVENT_BYTES:,}: the event_bytes "
                            "limit); raise it once brokers and consumers take that much")  # fmt: skip
    retry.set_defaults(run=run_retry)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one from 1 up") from None
    if not 1 <= value <= LARGEST_MAX_BYTES:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range; give a whole number from 1 to {LARGEST_MAX_BYTES}"
        )
    return value


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    app = build_application(settings)
    try:
        parked = ParkedEvents(app).all()
    finally:
        app.close()
    rows = [p.summary() for p in parked]
    if args.format == "json":
        print_json(rows)
    else:
        print_rows(rows, COLUMNS, "table", title=f"{len(rows)} parked events")
    return 0


def run_retry(args: argparse.Namespace, settings: Settings) -> int:
    app = build_application(settings)
    try:
        with build_kafka(settings, "relay-retry") as kafka:
            relay = Relay(app, kafka, max_event_bytes=args.max_bytes)
            try:
                outcome = relay.retry_parked(None if args.all else args.notification)
            except ValueError as error:
                return fail(str(error))
            except RelayDeliveryError as error:
                return fail(
                    f"{error}; nothing more was tried (is Kafka at {settings.kafka().bootstrap_servers}?)"
                )
    finally:
        app.close()
    print_json({"published": outcome.published, "still_parked": outcome.still_parked})
    if outcome.still_parked:
        return fail(f"{len(outcome.still_parked)} events are still parked: see `crmflow relay parked list`")
    return 0
