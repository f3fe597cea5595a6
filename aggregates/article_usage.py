"""Which articles resolved a tenant's cases of one category: the counts that quick replies rank.

One internal record per (tenant, category), its id derived from both (as
inbound events derive theirs), so that ``case.open`` finds it without an
index and ``case.resolve`` updates it in the same transaction as the
resolution. Two resolutions of one category at once collide on the record's
next version: one is refused as a concurrency conflict and runs again on the
fresh counts, so no count is lost.

Every ``ArticleUsageCounted`` carries the whole table after the change (and
the change itself, for the history), so the record is read from its latest
event alone (``latest_usage``): opening a case costs one indexed read of one
row, however many cases the category has seen. The table is bounded by the
category's articles and the words of their cases' subjects, not by the
number of cases.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.replies import counted

ARTICLE_USAGE_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/article-usage")


def article_usage_id(tenant_id: str, category: str | None) -> UUID:
    # "#" marks a category, so that no category's name can give the id of the cases without one.
    return uuid5(ARTICLE_USAGE_NAMESPACE, f"{tenant_id}\n{'' if category is None else '#' + category}")


class ArticleUsage(TenantAggregate):
    """Internal: never published to Kafka, never shown in the catalogue."""

    kind = "article-usage"

    class Event(TenantAggregate.Event):
        published = False

    @staticmethod
    def create_id(tenant_id: str, category: str | None, **_: Any) -> UUID:
        return article_usage_id(tenant_id, category)

    @event("ArticleUsageStarted")
    def __init__(self, tenant_id: str, category: str | None) -> None:
        self.tenant_id = tenant_id
        self.category = category
        # article id → {"cases": resolved cases of the category, "words": {subject word: cases with it}}
        self.articles: dict[str, dict[str, Any]] = {}
        self.status = "counting"

    def count(self, article_id: UUID, case_id: UUID, subject: str | None, change: int) -> None:
        """A case of the category was resolved with the article (+1), or reopened after it was (-1)."""
        self._count(article_id=str(article_id), case_id=str(case_id), change=change,
                    articles=counted(self.articles, str(article_id), subject, change))  # fmt: skip

    @event("ArticleUsageCounted")
    def _count(self, article_id: str, case_id: str, change: int, articles: dict[str, dict[str, Any]]) -> None:
        self.articles = articles

    @classmethod
    def from_latest(cls, latest: Any, tenant_id: str, category: str | None) -> ArticleUsage:
        """The record as its latest event left it: every counted event holds the whole table."""
        if latest.originator_version == 1:
            return latest.mutate(None)  # type: ignore[no-any-return]
        record = object.__new__(cls)
        record.__base_init__(latest.originator_id, latest.originator_version, latest.timestamp)
        record.tenant_id = tenant_id
        record.category = category
        record.articles = latest.articles
        record.status = "counting"
        return record


def latest_usage(event_store: Any, tenant_id: str, category: str | None) -> ArticleUsage | None:
    """The tenant's record for the category, read from its latest event; None before its first count."""
    record_id = article_usage_id(tenant_id, category)
    latest = next(iter(event_store.get(record_id, desc=True, limit=1)), None)
    if latest is None:
        return None
    return ArticleUsage.from_latest(latest, tenant_id, category)
