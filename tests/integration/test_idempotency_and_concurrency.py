"""Retried requests act once; concurrent writers never lose an update."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import ConcurrencyConflictError, IdempotencyKeyReusedError
from tests.conftest import Run


def assign(lead: object, owner: str, key: str | None = None, tenant: str = "acme") -> CommandRequest:
    return CommandRequest("lead.assign", tenant, {"lead_id": str(lead), "owner": owner}, idempotency_key=key)


def test_the_same_idempotency_key_twice_executes_once_and_returns_the_first_result(app: CrmApplication, run: Run) -> None:
    lead = run("lead.create", name="Ada").aggregate_id

    first = app.execute(assign(lead, "maria", key="assign-ada-1"))
    again = app.execute(assign(lead, "maria", key="assign-ada-1"))

    assert (first.replayed, again.replayed) == (False, True)
    assert again.events == first.events
    assert [h.type for h in app.history(lead)] == ["LeadCreated", "LeadAssigned"]
    assert app.history(lead)[1].meta["idempotency_key"] == "assign-ada-1"


def test_a_create_retried_with_its_key_creates_one_lead(app: CrmApplication) -> None:
    request = CommandRequest("lead.create", "acme", {"name": "Ada"}, idempotency_key="form-4711")
    first, retry = app.execute(request), app.execute(request)
    assert retry.aggregate_id == first.aggregate_id
    leads = [n for n in app.recorder.select_notifications(start=1, limit=100) if n.topic.endswith("LeadCreated")]
    assert len(leads) == 1


def test_a_key_reused_for_a_different_request_is_refused(app: CrmApplication, run: Run) -> None:
    lead = run("lead.create", name="Ada").aggregate_id
    app.execute(assign(lead, "maria", key="k-1"))
    with pytest.raises(IdempotencyKeyReusedError, match="'k-1' was first used for lead.assign with a different payload"):
        app.execute(assign(lead, "joe", key="k-1"))
    assert app.state(lead, "acme")["owner"] == "maria"


def test_keys_belong_to_a_tenant(app: CrmApplication) -> None:
    one = app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"}, idempotency_key="same"))
    two = app.execute(CommandRequest("lead.create", "globex", {"name": "Ada"}, idempotency_key="same"))
    assert one.aggregate_id != two.aggregate_id and not two.replayed


@pytest.fixture
def second_app(database_url: str) -> Iterator[CrmApplication]:
    """Another process's view of the same store: its own connections, no shared memory."""
    other = CrmApplication(database_url)
    yield other
    other.close()


class RacedApplication(CrmApplication):
    """Lets a rival writer commit between this writer's load and its save."""

    name = CrmApplication.name  # the same tables as the real application

    def __init__(self, database_url: str, rival: Callable[[], Any]) -> None:
        super().__init__(database_url)
        self.rivals = [rival]

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        if self.rivals:
            self.rivals.pop()()
        return super().save(*objs, **kwargs)


def test_the_writer_that_loses_a_race_gets_a_conflict_and_stores_nothing(
    database_url: str, second_app: CrmApplication
) -> None:
    lead = second_app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id
    raced = RacedApplication(database_url, rival=lambda: second_app.execute(assign(lead, "maria")))
    try:
        with pytest.raises(ConcurrencyConflictError, match=f"another writer changed lead {str(lead)[:8]} since it was loaded"):
            raced.execute(assign(lead, "joe"))
    finally:
        raced.close()
    assert [h.data.get("owner") for h in second_app.history(lead)] == [None, "maria"]


def test_a_conflict_is_retried_against_fresh_state_when_the_caller_allows(
    database_url: str, second_app: CrmApplication
) -> None:
    lead = second_app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id
    rescore = CommandRequest("lead.score", "acme", {"lead_id": str(lead), "points": 10, "reason": "webinar"})
    raced = RacedApplication(database_url, rival=lambda: second_app.execute(rescore))
    try:
        raced.execute(rescore, conflict_retries=1)
    finally:
        raced.close()
    assert second_app.state(lead, "acme")["score"] == 20  # both updates landed


def test_a_key_sent_twice_at_once_executes_once(database_url: str, second_app: CrmApplication) -> None:
    lead = second_app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id
    request = CommandRequest("lead.score", "acme", {"lead_id": str(lead), "points": 5, "reason": "r"}, idempotency_key="dup")
    raced = RacedApplication(database_url, rival=lambda: second_app.execute(request))
    try:
        result = raced.execute(request)  # the rival's copy committed first
    finally:
        raced.close()
    assert result.replayed and second_app.state(lead, "acme")["score"] == 5


def test_many_concurrent_writers_of_one_lead_lose_no_update(database_url: str, second_app: CrmApplication) -> None:
    lead = second_app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id
    writers, per_writer = 4, 15
    errors: list[BaseException] = []

    def writer() -> None:
        app = CrmApplication(database_url)
        try:
            for _ in range(per_writer):
                app.execute(
                    CommandRequest("lead.score", "acme", {"lead_id": str(lead), "points": 1, "reason": "click"}),
                    conflict_retries=50,
                )
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            app.close()

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert second_app.state(lead, "acme")["score"] == writers * per_writer
    assert len(second_app.history(lead)) == 1 + writers * per_writer
