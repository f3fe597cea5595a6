"""How far each worker is behind, as the operators' console page shows it: one row per stage of the path.

The figures are the ones the workers' metrics report, measured the same way and at the moment of asking:

- the relay: events stored but not yet acknowledged by Kafka (``crmflow_relay_lag_events``): the highest
  notification id less the relay's tracked position;
- each consumer group (intake, process, projection): records on its topic not yet committed by the group
  (``crmflow_consumer_lag_records``), from workers.metrics.ConsumerLag, which reads the group's commits
  without joining it, here read on to each partition's last record (the metric takes the end the broker
  reports, which on some brokers is the first offset of the last batch);
- the read models: stored events of a handled type not yet applied (workers.read_model_lag).

They are the service's, not a tenant's: counts of events, naming no record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.workers.config import Settings
from crmflow.workers.read_model_lag import read_model_lag

RELAY_NAME = "relay"  # the name crmflow's relay tracks its position under (workers.kafka.relay.Relay)


@dataclass(frozen=True)
class LagRow:
    stage: str  # the worker kind, or "read models"
    reads: str  # what it reads: the store, or a topic
    group: str  # its consumer group ("" for the relay and the read models)
    behind: int | None  # None: not measurable now (see ``problem``)
    unit: str
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "reads": self.reads, "group": self.group, "behind": self.behind,
                "unit": self.unit, "problem": self.problem}  # fmt: skip


def relay_lag(app: CrmApplication) -> int:
    """Events stored but not yet acknowledged by Kafka, as the relay itself counts them (Relay.lag)."""
    from crmflow.workers.kafka.parking import StoreSql
    from crmflow.workers.kafka.relay_marks import RelayMarks, tracking_name

    epoch = RelayMarks(StoreSql(app), RELAY_NAME).epoch()
    tracking = app.factory.tracking_recorder()
    position = tracking.max_tracking_id(tracking_name(RELAY_NAME, epoch)) or 0
    return max(0, (app.recorder.max_notification_id() or 0) - position)


def consumer_group_lags(settings: Settings, kafka: Any) -> list[LagRow]:
    """One row per consuming worker kind: its group's uncommitted records on its topic."""
    from crmflow.workers.metrics import ConsumerLag
    from crmflow.workers.run.runner import CONSUMER_GROUPS, consumer_groups

    groups = consumer_groups(settings, list(CONSUMER_GROUPS))
    measured = ConsumerLag(kafka, groups).measure(exact=True)
    return [LagRow(group.rsplit(".", 1)[-1], topic, group, measured.get(group), "records",
                   "" if group in measured else f"the topic {topic} does not exist yet")
            for group, topic in groups.items()]  # fmt: skip


def worker_lags(
    settings: Settings, app: CrmApplication, read_models: Callable[[Callable[[Database], Any]], Any],
    kafka: Any | None, kafka_problem: str | None,
) -> list[LagRow]:  # fmt: skip
    """Every stage's lag; a stage that cannot be measured says why instead of failing the others."""
    rows = [LagRow("relay", "event store", "", relay_lag(app), "events")]
    if kafka is None:
        rows += [LagRow(kind, "", "", None, "records", kafka_problem or "Kafka is not configured")
                 for kind in ("intake", "process", "projection")]  # fmt: skip
    else:
        rows += consumer_group_lags(settings, kafka)
    lag = read_models(lambda db: read_model_lag(app, db))
    if lag is None:
        rows.append(LagRow("read models", "event store", "", None, "events", "a memory:// store cannot be counted"))
    else:
        rows.append(LagRow("read models", "event store", "", lag.behind, "events",
                           "never built: no projection worker ran" if lag.never_built else ""))  # fmt: skip
    return rows
