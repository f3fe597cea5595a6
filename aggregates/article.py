"""Article: a knowledge-base / FAQ entry that cases are resolved with.

draft → published → archived; an archived article may be published again.
"""

from __future__ import annotations

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.errors import IllegalTransitionError


class Article(TenantAggregate):
    kind = "article"
    lifecycle = {"draft": {"published"}, "published": {"archived"}, "archived": {"published"}}
    lifecycle_text = "draft → published → archived; archived → published"

    @event("ArticleCreated")
    def __init__(self, tenant_id: str, title: str, body: str, category: str, tags: list[str]) -> None:
        self.tenant_id = tenant_id
        self.title = title
        self.body = body
        self.category = category
        self.tags = tags
        self.status = "draft"

    def publish(self) -> None:
        self.check_transition("publish", "published")
        self._publish(status="published")

    def archive(self) -> None:
        self.check_transition("archive", "archived")
        self._archive(status="archived")

    def revise(self, title: str | None, body: str | None) -> None:
        if self.status == "archived":
            raise IllegalTransitionError(
                f"cannot revise article {self.short_id}: it is archived; publish it again first",
                aggregate_id=str(self.id),
                status=self.status,
            )
        self._revise(title=title or self.title, body=body or self.body)

    def check_is_published(self, use: str = "resolve cases") -> None:
        if self.status != "published":
            raise IllegalTransitionError(
                f"article {self.short_id} is {self.status}: only published articles can {use}",
                aggregate_id=str(self.id),
                status=self.status,
            )

    @event("ArticlePublished")
    def _publish(self, status: str) -> None:
        self.status = status

    @event("ArticleArchived")
    def _archive(self, status: str) -> None:
        self.status = status

    @event("ArticleRevised")
    def _revise(self, title: str, body: str) -> None:
        self.title = title
        self.body = body
