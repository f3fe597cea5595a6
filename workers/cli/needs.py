"""What each verb needs from outside (store, read models, broker), checked before it runs.

One table, so that every verb's dependencies are seen together: a read-only verb reads a store that
must exist and never creates one; a verb that writes may create a SQLite file in an existing folder
(and the folder too with ``--create``); long-running verbs refuse to start without their dependencies
unless ``--wait-for-dependencies`` (then they ride out the wait, crmflow.workers.run.resilience).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from crmflow.workers import preflight
from crmflow.workers.config import Settings


@dataclass(frozen=True)
class Needs:
    store: preflight.Access | None = None
    reports: preflight.Access | None = None
    broker: bool = False
    long_running: bool = False


STORE_READ, STORE_WRITE = Needs(store="read"), Needs(store="write")
WORKERS = {
    "relay": Needs(store="write", broker=True, long_running=True),
    "intake": Needs(store="write", broker=True, long_running=True),
    "process": Needs(store="write", broker=True, long_running=True),
    "timer": Needs(store="write", long_running=True),
    "projection": Needs(reports="write", broker=True, long_running=True),
    "all": Needs(store="write", reports="write", broker=True, long_running=True),
}
# Keyed by the verb's words (command, then area/action); a verb not listed needs nothing checked.
VERBS: dict[tuple[str, ...], Needs] = {
    ("command",): STORE_WRITE,
    ("explain",): STORE_READ,
    ("query",): Needs(),  # its own checks: read models never built are an empty report that says so
    ("projections", "rebuild"): Needs(store="read", reports="write"),
    ("projections", "status"): Needs(reports="read", broker=True),
    ("publish",): Needs(broker=True),
    ("deadletter", "list"): Needs(broker=True),
    ("deadletter", "show"): Needs(broker=True),
    ("deadletter", "redrive"): Needs(broker=True),
    ("relay", "parked", "list"): STORE_READ,
    ("relay", "parked", "retry"): Needs(store="read", broker=True),
    ("process", "deploy"): STORE_WRITE,
    ("process", "list"): STORE_READ,
    ("process", "whatif"): STORE_READ,
    ("store", "migrate"): STORE_READ,  # rewrites a store that must be there
    ("serve",): Needs(store="write", reports="write", long_running=True),
    ("segments", "apply"): Needs(store="write", reports="read"),
}
# Verbs that write a store take --create (a SQLite file's folder that does not exist yet is made).
CREATING = [verb for verb, needs in VERBS.items() if "write" in (needs.store, needs.reports)] + [("worker",)]
WAITING = [("worker",), ("serve",)]
READ_MODELS_MISSING = ("is the path right? they are written by `crmflow worker projection` "
                       "or `crmflow projections rebuild`")


def verb_of(args: argparse.Namespace) -> tuple[str, ...]:
    words = [getattr(args, "command_name", None), getattr(args, "area", None), getattr(args, "action", None)]
    return tuple(w for w in words if w)


def needs_of(args: argparse.Namespace) -> Needs:
    verb = verb_of(args)
    if verb == ("worker",):
        return WORKERS[args.kind]
    if verb == ("demo",):  # its own store and broker, unless told to use a Kafka cluster
        return Needs(broker=bool(args.bootstrap_servers))
    return VERBS.get(verb, Needs())


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--create and --wait-for-dependencies on the verbs they concern (the verbs' modules need not know)."""
    for verb in CREATING:
        if (found := _subparser(parser, verb)) is not None:
            found.add_argument("--create", action="store_true", default=argparse.SUPPRESS,
                               help="create the SQLite store's folder if it does not exist (else refused as a typo)")
    for verb in WAITING:
        if (found := _subparser(parser, verb)) is not None:
            found.add_argument("--wait-for-dependencies", action="store_true", default=argparse.SUPPRESS,
                               help="wait for the database and the broker to come up instead of refusing to "
                                    "start without them")  # fmt: skip


def _subparser(parser: argparse.ArgumentParser, verb: tuple[str, ...]) -> argparse.ArgumentParser | None:
    for word in verb:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            return None
        parser = subs[0].choices[word]
    return parser


def check(args: argparse.Namespace, settings: Settings) -> None:
    """Raise preflight.Unavailable, in a few seconds at most, if a dependency of the verb is not there."""
    needs = needs_of(args)
    # Told to wait: the workers retry servers with backoff until they are there. A SQLite path is no server
    # that may come up later, so a mistake in one is still refused.
    waiting = needs.long_running and getattr(args, "wait_for_dependencies", False)
    create = getattr(args, "create", False)
    timeout_s = settings.connect_timeout_s
    databases = []  # only what the verb uses: a bad URL it never opens is not its mistake
    if needs.store:
        databases.append((needs.store, settings.database_url, "event store", store_table(settings),
                          "is the path right?"))  # fmt: skip
    if needs.reports:
        databases.append((needs.reports, reports_database_url(settings), "read models", preflight.REPORTS_TABLE,
                          READ_MODELS_MISSING))  # fmt: skip
    for access, url, what, table, missing in databases:
        if not (waiting and preflight.target_of(url).kind == "postgres"):
            preflight.check_database(url, what=what, table=table, access=access, create=create, timeout_s=timeout_s,
                                     missing=missing)  # fmt: skip
    if needs.broker and not waiting:
        servers = getattr(args, "bootstrap_servers", None) or settings.kafka_bootstrap_servers
        preflight.check_broker(servers, timeout_s=timeout_s)


def store_table(settings: Settings) -> str:
    return preflight.STORE_TABLES["postgres" if preflight.target_of(settings.database_url).kind == "postgres"
                                  else "sqlite"]  # fmt: skip


def reports_database_url(settings: Settings) -> str:
    from crmflow.projections.db import reports_url

    return settings.reports_database_url or reports_url(settings.database_url)


@contextmanager
def store_access(args: argparse.Namespace) -> Iterator[None]:
    """While a read-only verb runs, eventsourcing creates no tables (CREATE_TABLE, read from the environment).

    The check has found the tables there; this makes "creates nothing" hold by construction too, and a
    read-only database role is never asked to CREATE.
    """
    if needs_of(args).store != "read":
        yield
        return
    before = os.environ.get("CREATE_TABLE")
    os.environ["CREATE_TABLE"] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CREATE_TABLE", None)
        else:
            os.environ["CREATE_TABLE"] = before
