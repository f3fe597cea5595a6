"""Running the demo: the bundled broker, SQLite, every worker on a thread, a simulated clock, the workload.

The clock moves an hour at a time through the working day (and through the
weekend, so that timers come due). After each move, and again after the
users' hour, the demo waits until the service has settled: the intake has
taken every inbound event sent, the relay has published everything stored,
the process and projection workers have handled everything published, and
the timer worker has looked at the new time. Only then do the users act, so every process sees the time its
event happened at, and days of SLA timers pass in seconds.

The same seed does the same work and prints the same reports: the users act
on what they saw when the hour began and the other services' events go out
after the users' commands (workers.demo.workload); the topics have one
partition, so the process worker takes events in the order they were stored
and round_robin hands out owners in the same order every run; the simulated
weeks start on the same day (``start``, by default the Monday that lets them
end before today: runs in the same week share it); and the printed reports
measure ages at the simulated clock's last hour, not at the wall clock.
"""

from __future__ import annotations

import inspect
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import structlog

from crmflow.aggregates.publication import STRUCTURED_HEADERS
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.reports import REPORTS
from crmflow.workers.bootstrap import build_application, build_kafka, build_reports_db
from crmflow.workers.config import Settings
from crmflow.workers.demo.clock import SimulatedClock
from crmflow.workers.demo.workload import SIZES, TENANTS, Size, Workload
from crmflow.workers.kafka.broker import LocalBroker
from crmflow.workers.run.runner import WORKER_KINDS, WorkerSet

log = structlog.get_logger("crmflow.demo")

# Users work 07:00-15:00 UTC: inside the support desk's hours in Berlin (08:00-18:00) all year round.
WORKING_HOURS_UTC = tuple(range(7, 16))
WEEKEND_HOURS_UTC = (12,)  # the clock still passes the weekend: timers come due on Monday
SHIPPED_DEFINITIONS = Path(__file__).resolve().parents[2] / "processes" / "definitions"
LOG_FILE = "crmflow.log"  # in a kept data directory; the CLI opens it before the demo starts


class DemoError(RuntimeError):
    """The demo could not run (a worker failed, the workers did not catch up, the directory is taken)."""


@dataclass(frozen=True)
class DemoOptions:
    size: str = "medium"
    seed: int = 7
    data_dir: Path | None = None  # kept afterwards; None: a temporary directory, removed at the end
    days: int | None = None  # override the size's simulated days
    tenants: int | None = None  # override the size's number of tenants
    start: date | None = None  # the first simulated day; None: the Monday that lets the days end before today
    settle_timeout_s: float = 120.0
    # An existing Kafka cluster (host:port[,host:port]) instead of the bundled broker; the demo's topics get a
    # prefix of their own there, so it never reads another run's events.
    bootstrap_servers: str | None = None

    def workload_size(self) -> Size:
        base = SIZES[self.size]
        return Size(tenants=self.tenants or base.tenants, days=self.days or base.days,
                    leads_per_day=base.leads_per_day, forms_per_day=base.forms_per_day,
                    cases_per_day=base.cases_per_day)  # fmt: skip


@dataclass
class DemoResult:
    directory: Path
    kept: bool
    tenants: tuple[str, ...]
    simulated_hours: int
    stored_events: int
    seconds: float
    stats: dict[str, int] = field(default_factory=dict)
    # tenant → report name → rows, read before a temporary directory is removed.
    reports: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return str(self.directory / "crmflow.db")


def run_report(report: Any, reports: Any, tenant: str, end: datetime) -> list[dict[str, Any]]:
    """A report as of the simulated clock's last hour: ages (the SLA backlog's) then do not depend on when
    the demo ran, and two runs with the same seed print the same figures."""
    if "now" in inspect.signature(report.run).parameters:
        return report.run(reports, tenant, now=end)
    return report.run(reports, tenant)


def shipped_definition_files() -> list[Path]:
    # definitions/optional/ (shipped, deployed by whoever wants them) is not globbed here.
    files = sorted(p for p in SHIPPED_DEFINITIONS.glob("*.yaml") if not p.name.endswith(".test.yaml"))
    if not files:
        raise DemoError(f"no shipped process definitions found in {SHIPPED_DEFINITIONS}")
    return files


def first_day(days: int, today: datetime) -> datetime:
    """The Monday that lets ``days`` simulated days end before ``today``: reports of a kept demo that
    measure ages against the wall clock (backlog age) then read as they would in a live service."""
    start = (today - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start - timedelta(days=start.weekday())


def simulated_hours(days: int, start: datetime) -> list[tuple[datetime, bool]]:
    """Every hour the demo stops at, and whether the users work then (weekdays) or only time passes."""
    hours = []
    for day in range(days):
        date = start + timedelta(days=day)
        working = date.weekday() < 5
        for hour in WORKING_HOURS_UTC if working else WEEKEND_HOURS_UTC:
            hours.append((date.replace(hour=hour), working))
    return hours


def start_of(options: DemoOptions, days: int) -> datetime:
    if options.start is None:
        return first_day(days, datetime.now(timezone.utc))
    return datetime(options.start.year, options.start.month, options.start.day, tzinfo=timezone.utc)


def demo_settings(**values: Any) -> Settings:
    """The demo's settings: its topics have one partition, so the process worker reads events in the order
    they were stored (across partitions the order would depend on the fetches) and round_robin hands out
    the same owners every run."""
    return Settings(partitions=1, **values)


def prepare_directory(data_dir: Path | None) -> tuple[Path, bool]:
    if data_dir is None:
        return Path(tempfile.mkdtemp(prefix="crmflow-demo-")), False
    if data_dir.exists() and any(p.name != LOG_FILE for p in data_dir.iterdir()):
        raise DemoError(f"{data_dir} is not empty: the demo starts from nothing; choose a new directory")
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir, True


class Settler:
    """Waits until the service has caught up with everything the users did (see the module docstring)."""

    def __init__(self, workers: WorkerSet, max_notification_id: Callable[[], int], timeout_s: float) -> None:
        self.workers = workers
        self.max_notification_id = max_notification_id
        self.timeout_s = timeout_s
        self.inbound_sent = 0

    def caught_up(self, ticks_before: int) -> bool:
        w = self.workers.workers
        relay, published = w["relay"], w["relay"].published
        return (
            w["timer"].ticks >= ticks_before + 2  # one whole tick began after the clock moved
            and w["intake"].handled >= self.inbound_sent
            and w["process"].handled >= published
            and w["projection"].handled >= published
            # Last: what the workers above stored while we looked must be published too.
            and relay.position >= self.max_notification_id()
            and relay.published == published
        )

    def settle(self) -> None:
        ticks_before = self.workers.workers["timer"].ticks
        deadline = time.monotonic() + self.timeout_s
        while not self.caught_up(ticks_before):
            if self.workers.errors:
                kind, error = next(iter(self.workers.errors.items()))
                raise DemoError(f"the {kind} worker failed: {error}")
            if time.monotonic() > deadline:
                raise DemoError(f"the workers did not catch up within {self.timeout_s:.0f}s")
            time.sleep(0.005)


def run_demo(options: DemoOptions, on_hour: Callable[[int, int, datetime, dict[str, int]], None] | None = None,
             on_status: Callable[[str], None] | None = None) -> DemoResult:  # fmt: skip
    """Run the whole demo; ``on_hour(done, total, now, stats)`` reports progress, ``on_status`` each phase."""
    status = on_status or (lambda _message: None)
    size = options.workload_size()
    directory, kept = prepare_directory(options.data_dir)
    started = time.monotonic()
    tenants = list(TENANTS[: size.tenants])
    try:
        if options.bootstrap_servers:
            status(f"using the Kafka cluster at {options.bootstrap_servers}")
            # The prefix only keeps this run's topics apart from others' on the cluster: it changes no work.
            settings = demo_settings(database_url=str(directory / "crmflow.db"), tenants=tenants,
                                     kafka_bootstrap_servers=options.bootstrap_servers,
                                     topic_prefix=f"crmflow-demo-{uuid.uuid4().hex[:8]}")  # fmt: skip
            return _drive(options, size, settings, directory, kept, started, on_hour, status)
        status("starting the local broker")
        with LocalBroker(log_file=directory / "broker.log") as broker:
            settings = demo_settings(database_url=str(directory / "crmflow.db"), tenants=tenants,
                                     kafka_bootstrap_servers=broker.bootstrap_servers)
            settings = settings.tuned_for_bundled_broker()
            return _drive(options, size, settings, directory, kept, started, on_hour, status)
    finally:
        if not kept:
            shutil.rmtree(directory, ignore_errors=True)


def _drive(options: DemoOptions, size: Size, settings: Settings, directory: Path, kept: bool, started: float,
           on_hour: Callable[..., None] | None, status: Callable[[str], None]) -> DemoResult:  # fmt: skip
    hours = simulated_hours(size.days, start_of(options, size.days))
    clock = SimulatedClock(hours[0][0] - timedelta(hours=1))
    app = build_application(settings, clock=clock)
    reports = build_reports_db(settings)
    try:
        status("deploying the shipped process definitions")
        DefinitionRegistry(app).deploy(load_files(shipped_definition_files()), "demo")
        status("starting relay, intake, process, timer and projection workers")
        with WorkerSet(WORKER_KINDS, settings, clock=clock, timer_interval_s=0.02) as workers, \
                build_kafka(settings, "demo") as kafka:  # fmt: skip
            settler = Settler(workers, lambda: app.recorder.max_notification_id() or 0, options.settle_timeout_s)

            def publish(document: dict[str, Any]) -> None:
                kafka.producer.send(kafka.topics.inbound, key=document["id"].encode(),
                                    value=orjson.dumps(document), headers=STRUCTURED_HEADERS)  # fmt: skip
                settler.inbound_sent += 1

            workload = Workload(app, reports, publish, clock, random.Random(options.seed), size)
            for tenant in workload.tenants:
                workload.set_up(tenant)
            status("waiting for the workers to join their consumer groups")
            settler.settle()
            for done, (moment, working) in enumerate(hours, 1):
                clock.move_to(moment)
                # The timers due at the new time fire, and what they start is handled, before anyone acts: a
                # user resolving a case never races its SLA escalation, whichever thread is quicker.
                settler.settle()
                if working:
                    first_of_week = moment.weekday() == 0 and moment.hour == WORKING_HOURS_UTC[0]
                    for tenant in workload.tenants:
                        workload.hour(tenant, len(WORKING_HOURS_UTC), first_of_week)
                    workload.send_inbound()
                    kafka.producer.flush(timeout=30)
                    settler.settle()
                if on_hour:
                    on_hour(done, len(hours), moment, dict(workload.stats))
            # Deals won in the last hour reach the read models only after it, so billing would never see
            # them: the billing system closes the books before the reports are printed, and reports the
            # subscriptions' usage of the week so far (Monday's reports covered the weeks before).
            status("closing the quarter and the books: invoicing the deals won in the last hour, metering usage")
            for tenant in workload.tenants:
                workload.close_quarter(tenant)
            settler.settle()
            for tenant in workload.tenants:
                workload.bill_won_deals(tenant, clock())
                workload.report_usage_to_date(tenant, clock())
            workload.send_inbound()
            kafka.producer.flush(timeout=30)
            settler.settle()
            status("stopping the workers (each finishes the work in hand)")
        stored = app.recorder.max_notification_id() or 0
        log.info("demo_finished", hours=len(hours), stored_events=stored, **workload.stats)
        rows = {t: {name: run_report(report, reports, t, clock()) for name, report in REPORTS.items()}
                for t in workload.tenants}  # fmt: skip
        return DemoResult(directory, kept, workload.tenants, len(hours), stored, time.monotonic() - started,
                          dict(workload.stats), rows)  # fmt: skip
    finally:
        reports.close()
        app.close()
