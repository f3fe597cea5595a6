"""crmflow worker | broker | publish | deadletter: Kafka from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import structlog
from rich.console import Console

from crmflow.aggregates.publication import STRUCTURED_HEADERS
from crmflow.workers.bootstrap import build_kafka
from crmflow.workers.cli.output import fail, print_json, print_rows
from crmflow.workers.config import Settings
from crmflow.workers.run.kinds import WORKER_KINDS
from crmflow.workers.shutdown import StopSignal

RAW = argparse.RawDescriptionHelpFormatter
log = structlog.get_logger("crmflow.cli")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    worker = sub.add_parser(
        "worker", help="run a long-running worker (stops gracefully on SIGTERM)", formatter_class=RAW,
        epilog="examples:\n  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 crmflow worker all\n"
               "  CRMFLOW_TENANTS=acme,globex crmflow worker intake\n"
               "  crmflow worker process --metrics-port 9102   # start it twice: the copies share the partitions\n"
               "  crmflow worker timer",
    )  # fmt: skip
    worker.add_argument(
        "kind", choices=("all", *WORKER_KINDS),
        help="relay: store → events topic; intake: inbound topic → store; process: events → process instances; "
             "timer: fires due process timers; projection: events → read models; all: every kind, one thread each",
    )  # fmt: skip
    worker.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port "
                        "(default: $CRMFLOW_METRICS_PORT; unset: none)")  # fmt: skip
    worker.set_defaults(run=run_worker)

    broker = sub.add_parser(
        "broker", help="run the bundled local Kafka-compatible broker and create the topics", formatter_class=RAW,
        epilog="example:\n  crmflow broker --port 9092   # then KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092",
    )  # fmt: skip
    broker.add_argument("--port", type=int, default=9092)
    broker.set_defaults(run=run_broker)

    publish = sub.add_parser(
        "publish", help="publish CloudEvents (JSON lines) to the inbound topic, as another service would",
        formatter_class=RAW,
        epilog="examples:\n  crmflow publish examples/form-submissions.jsonl\n  cat examples/form-submissions.jsonl | crmflow publish -",
    )  # fmt: skip
    publish.add_argument("file", help="a .jsonl file, or - for standard input")
    publish.add_argument("--strict", action="store_true", help="refuse the file if a line is not a JSON object")
    publish.set_defaults(run=run_publish)

    dead = sub.add_parser(
        "deadletter", help="see what failed and why, and send it back", formatter_class=RAW,
        epilog="examples:\n  crmflow deadletter list\n  crmflow deadletter show 2:17\n"
               "  crmflow deadletter redrive --error unknown_tenant",
    )  # fmt: skip
    dead_sub = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    dead_list = dead_sub.add_parser("list", help="every dead letter: position, error, reason, origin",
                                    formatter_class=RAW, epilog="examples:\n  crmflow deadletter list\n"
                                    "  crmflow deadletter list --format json | jq '.[] | .reason'")  # fmt: skip
    dead_list.add_argument("--format", choices=("table", "json", "csv"), default="table")
    dead_list.set_defaults(run=run_deadletter_list)
    dead_show = dead_sub.add_parser("show", help="one dead letter in full: headers and original message",
                                    formatter_class=RAW, epilog="example:\n  crmflow deadletter show 2:17   "
                                    "# partition 2, offset 17, as printed by `crmflow deadletter list`")  # fmt: skip
    dead_show.add_argument("position", help="PARTITION:OFFSET as printed by list")
    dead_show.set_defaults(run=run_deadletter_show)
    dead_redrive = dead_sub.add_parser(
        "redrive", help="send dead letters not yet redriven back to their topic", formatter_class=RAW,
        epilog="examples:\n  crmflow deadletter redrive --error unknown_tenant --dry-run   # what would be sent\n"
               "  crmflow deadletter redrive --error unknown_tenant",
    )  # fmt: skip
    dead_redrive.add_argument("--error", help="only this error code (e.g. unknown_tenant)")
    dead_redrive.add_argument("--dry-run", action="store_true", help="show what would be sent, send nothing")
    dead_redrive.set_defaults(run=run_deadletter_redrive)


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.workers.metrics import serve_metrics
    from crmflow.workers.run.runner import WorkerSet

    stop = StopSignal().install()
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": args.metrics_port})
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port)
    workers = WorkerSet(WORKER_KINDS if args.kind == "all" else [args.kind], settings, stop)
    try:
        workers.start()
        workers.wait()
    except RuntimeError as error:
        return fail(str(error))
    finally:
        workers.close()
    if workers.errors:
        return fail("; ".join(f"the {kind} worker failed: {error}" for kind, error in workers.errors.items()))
    return 0


def run_broker(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.workers.kafka.broker import BUNDLED_BROKER_TUNING, LocalBroker

    stop = StopSignal().install()
    with LocalBroker(port=args.port) as broker:
        local = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
        with build_kafka(local, "broker") as kafka:
            kafka.ensure_topics()
        tuning = " ".join(f"CRMFLOW_KAFKA_{name.upper()}={value}" for name, value in BUNDLED_BROKER_TUNING.items())
        Console(stderr=True, highlight=False).print(
            f"broker listening on [bold]{broker.bootstrap_servers}[/] (memory only); topics "
            f"{', '.join(kafka.topics.all())} with {local.partitions} partitions. Ctrl-C stops it.\n"
            f"Workers against it want the bundled broker's timings:\n"
            f"  export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers} {tuning}"
        )
        while not stop.wait(0.5):
            if broker.process is None or broker.process.poll() is not None:
                return fail("the broker process exited")
    return 0


def run_publish(args: argparse.Namespace, settings: Settings) -> int:
    try:
        lines = (sys.stdin if args.file == "-" else Path(args.file).open(encoding="utf-8", errors="surrogateescape"))
    except OSError as error:
        return fail(f"cannot read {args.file}: {error}")
    messages: list[tuple[bytes | None, bytes]] = []
    not_objects = []
    with lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            value = line.rstrip("\n").encode("utf-8", "surrogateescape")
            try:
                document = json.loads(value)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                not_objects.append(number)
                messages.append((None, value))
                continue
            key = document.get("subject") or document.get("id")
            messages.append((str(key).encode() if key is not None else None, value))
    if not_objects and args.strict:
        return fail(f"line(s) {', '.join(map(str, not_objects[:10]))} are not JSON objects; nothing was published")
    with build_kafka(settings, "publish") as kafka:
        kafka.ensure_topics()
        # Structured mode, said as the CloudEvents Kafka binding says it (without it a record is binary).
        futures = [kafka.producer.send(kafka.topics.inbound, key=k, value=v, headers=STRUCTURED_HEADERS)
                   for k, v in messages]  # fmt: skip
        kafka.producer.flush(timeout=30)
        failed = sum(1 for f in futures if not f.succeeded())
    if not_objects:
        Console(stderr=True).print(
            f"warning: line(s) {', '.join(map(str, not_objects[:10]))} are not JSON objects; "
            "sent anyway, the intake will dead-letter them", highlight=False,
        )  # fmt: skip
    print_json({"topic": kafka.topics.inbound, "published": len(messages) - failed, "failed": failed})
    return 1 if failed else 0


def run_deadletter_list(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.workers.kafka import deadletters

    with build_kafka(settings, "deadletter") as kafka:
        letters = deadletters.list_dead_letters(kafka)
    columns = ("position", "error", "limit", "reason", "original", "attempts", "failed_at", "bytes",
               "original_bytes")  # fmt: skip
    print_rows([d.summary() for d in letters], columns, args.format, title=f"{len(letters)} dead letters")
    return 0


def run_deadletter_show(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.workers.kafka import deadletters

    with build_kafka(settings, "deadletter") as kafka:
        letter = deadletters.find_dead_letter(kafka, args.position)
    if letter is None:
        return fail(f"no dead letter at {args.position} (see `crmflow deadletter list`)")
    try:
        value: object = letter.value.decode("utf-8")
    except UnicodeDecodeError:
        value = {"not_utf8_hex": letter.value.hex()}
    print_json({**letter.summary(), "key": letter.key.decode("utf-8", "replace") if letter.key else None,
                "headers": letter.headers, "value": value})  # fmt: skip
    return 0


def run_deadletter_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.workers.kafka import deadletters

    with build_kafka(settings, "redrive") as kafka:
        letters = deadletters.redrive(kafka, error=args.error, dry_run=args.dry_run)
    verb = "would redrive" if args.dry_run else "redriven"
    print_json({verb: [d.summary() for d in letters], "count": len(letters)})
    return 0


