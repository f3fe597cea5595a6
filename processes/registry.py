"""Deployed definitions, event-sourced: who deployed which version of what, and when.

Each (kind, tenant scope, name) is an aggregate whose events are the versions
deployed; a version is immutable (the same version with other content is
refused, the same content again is a no-op). One index aggregate lists every
definition and counts deployments, so a running worker notices a new version
with a single small read and loads it without a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from eventsourcing.domain import event
from eventsourcing.persistence import IntegrityError

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.clock import pinned_event_time
from crmflow.aggregates.errors import ConcurrencyConflictError, DomainError
from crmflow.aggregates.reading import find
from crmflow.processes.loader import Document, DocumentsInvalid, parse_documents

log = structlog.get_logger("crmflow.processes")
REGISTRY_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/definitions")
INDEX_ID = uuid5(REGISTRY_NAMESPACE, "index")
DEPLOYED_KINDS = ("Process", "Calendar", "Segmentation")  # a ProcessTest is checked, never deployed
# Only the newest version of these applies; a process keeps every version (running instances keep theirs).
LATEST_ONLY_KINDS = ("Calendar", "Segmentation")


class DefinitionVersionConflictError(DomainError):
    """A version number was deployed before with other content: versions are immutable."""

    code = "version_conflict"


def definition_id(kind: str, scope: str, name: str) -> UUID:
    return uuid5(REGISTRY_NAMESPACE, f"{kind}\n{scope}\n{name}")


class DeployedDefinition(TenantAggregate):
    """Every deployed version of one process or calendar (tenant_id is its scope, "*" for all)."""

    kind = "definition"

    @staticmethod
    def create_id(tenant_id: str, document_kind: str, name: str, **_: Any) -> UUID:
        return definition_id(document_kind, tenant_id, name)

    @event("DefinitionRegistered")
    def __init__(self, tenant_id: str, document_kind: str, name: str) -> None:
        self.tenant_id = tenant_id
        self.document_kind = document_kind
        self.name = name
        self.versions: dict[int, str] = {}  # version -> content hash
        self.status = "registered"

    def deploy(self, version: int, content: str, deployed_by: str) -> bool:
        """Record a new version; False if this exact version is already deployed."""
        content_hash = hashlib.sha256(content.encode()).hexdigest()
        if version in self.versions:
            if self.versions[version] == content_hash:
                return False
            raise DefinitionVersionConflictError(
                f"{self.document_kind} {self.name} version {version} is already deployed with other content: "
                "deployed versions never change; give the new content a new version number",
                name=self.name,
                version=version,
            )
        self._deploy(version=version, content=content, content_hash=content_hash, deployed_by=deployed_by)
        return True

    @event("DefinitionDeployed")
    def _deploy(self, version: int, content: str, content_hash: str, deployed_by: str) -> None:
        self.versions[version] = content_hash
        self.status = "deployed"


class DefinitionIndex(TenantAggregate):
    """All definitions, and a counter that moves with every deployment."""

    kind = "definition-index"

    class Event(TenantAggregate.Event):
        published = False  # a counter for workers; the deployments themselves are published

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return INDEX_ID

    @event("DefinitionIndexCreated")
    def __init__(self, tenant_id: str = "*") -> None:
        self.tenant_id = tenant_id
        self.definitions: list[str] = []
        self.deployments = 0
        self.status = "active"

    @event("DefinitionIndexUpdated")
    def record(self, definition: str) -> None:
        if definition not in self.definitions:
            self.definitions.append(definition)
        self.deployments += 1


@dataclass(frozen=True)
class DeployedVersion:
    kind: str
    scope: str
    name: str
    version: int
    content_hash: str
    deployed_by: str
    deployed_at: datetime
    content: str


@dataclass(frozen=True)
class DeployOutcome:
    kind: str
    scope: str
    name: str
    version: int
    deployed: bool  # False: this exact version was already deployed


class DefinitionRegistry:
    def __init__(self, app: CrmApplication) -> None:
        self.app = app

    def deploy(self, documents: list[Document], deployed_by: str, *, retries: int = 3) -> list[DeployOutcome]:
        """Store every process, calendar and segmentation of the documents in one transaction (tests are not
        deployed)."""
        for _ in range(retries + 1):
            with pinned_event_time(self.app.clock()):  # events are stamped when they are made
                changed, index, outcomes = self._plan(documents, deployed_by)
            if not changed:
                return outcomes
            try:
                self.app.save(*changed, index)
                return outcomes
            except IntegrityError:
                continue  # someone else deployed at the same moment: read again and retry
        raise ConcurrencyConflictError("definitions changed while deploying; try again")

    def _plan(
        self, documents: list[Document], deployed_by: str
    ) -> tuple[list[TenantAggregate], DefinitionIndex, list[DeployOutcome]]:
        index = self._index() or DefinitionIndex()
        changed: list[TenantAggregate] = []
        outcomes = []
        for document in documents:
            if document.kind not in DEPLOYED_KINDS:
                continue
            model: Any = document.model
            scope = getattr(model, "tenant", "*")
            version = getattr(model, "version", 1)
            record = self._get(definition_id(document.kind, scope, model.name))
            if record is None:
                record = DeployedDefinition(tenant_id=scope, document_kind=document.kind, name=model.name)
            if record.deploy(version, document.text, deployed_by):
                index.record(str(record.id))
                changed.append(record)
            outcomes.append(
                DeployOutcome(document.kind, scope, model.name, version, bool(record.pending_events))
            )
        return changed, index, outcomes

    def revision(self) -> int:
        """Moves with every deployment: cheap to poll."""
        index = self._index()
        return index.deployments if index else 0

    def versions(self) -> list[DeployedVersion]:
        """Every deployed version of every definition, oldest first."""
        index = self._index()
        out = []
        for definition in index.definitions if index else []:
            for e in self.app.events.get(UUID(definition)):
                if type(e).__name__ == "DefinitionDeployed":
                    record = self._get(UUID(definition))
                    assert record is not None
                    out.append(DeployedVersion(record.document_kind, record.tenant_id, record.name, e.version,
                                               e.content_hash, e.deployed_by, e.timestamp,
                                               e.content))  # fmt: skip
        return sorted(out, key=lambda v: (v.deployed_at, v.name, v.version))

    def documents(self, *, latest_only: bool = False) -> list[Document]:
        """The deployed documents: every process version (running instances keep theirs), the latest calendars
        and segmentations."""
        latest: dict[tuple[str, str, str], DeployedVersion] = {}
        chosen = []
        for v in self.versions():
            key = (v.kind, v.scope, v.name)
            if v.kind in LATEST_ONLY_KINDS or latest_only:
                if key not in latest or v.version >= latest[key].version:
                    latest[key] = v
            else:
                chosen.append(v)
        chosen += latest.values()
        documents = []
        for v in chosen:
            try:
                documents += parse_documents(v.content, f"deployed:{v.name}@{v.version}")
            except DocumentsInvalid as invalid:
                # Deployed before today's limits (50 MB, YAML nested too deep): left out, saying why.
                log.warning(
                    "deployed_definition_refused", name=v.name, version=v.version, reason=str(invalid)
                )
        return documents

    def _index(self) -> DefinitionIndex | None:
        found = self._get(INDEX_ID)
        return found if isinstance(found, DefinitionIndex) else None

    def _get(self, aggregate_id: UUID) -> Any:
        return find(self.app.repository, aggregate_id)
