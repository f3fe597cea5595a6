"""What the endpoints work with: the event store, the read models, the registry, the intake's policy.

Built once per API by ``create_app``; handlers get it as a dependency.
Handlers run on a thread pool; the read-model database is one connection, so
its queries take turns (each is a single short transaction).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from crmflow.aggregates.application import CrmApplication
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.db import Database
from crmflow.workers.config import Settings
from crmflow.workers.inbound_checks import InboundPolicy

T = TypeVar("T")


@dataclass
class Services:
    app: CrmApplication
    reports_db: Database
    policy: InboundPolicy
    secret: str
    registry: DefinitionRegistry = field(init=False)
    settings: Settings | None = None  # what reports are figured with (workers.report_inputs); None: defaults
    _reports_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.registry = DefinitionRegistry(self.app)

    def read_models(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``query(reports_db, ...)`` alone on the read-model connection."""
        with self._reports_lock:
            return query(self.reports_db, *args, **kwargs)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


Service = Annotated[Services, Depends(_services)]
