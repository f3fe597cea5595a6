"""What the case commands do for quick replies: suggest on open, count on resolve and reopen.

Run inside the commands, so a suggestion is decided once, from what the store
holds when the case opens, and stored as ``CaseRepliesSuggested``: replays
and read-model rebuilds read it back and never rank again.
"""

from __future__ import annotations

from uuid import UUID

from crmflow.aggregates.article import Article
from crmflow.aggregates.article_usage import ArticleUsage, article_usage_id, latest_usage
from crmflow.aggregates.case import Case
from crmflow.aggregates.commanding import CommandContext
from crmflow.aggregates.errors import AggregateNotFoundError
from crmflow.aggregates.replies import rank, suggest


def usage_of(ctx: CommandContext, category: str | None) -> ArticleUsage | None:
    """The category's counts: as an earlier command of the unit left them, else as stored."""
    held = ctx.held(article_usage_id(ctx.tenant, category))
    if isinstance(held, ArticleUsage):
        return held
    return latest_usage(ctx.repository.event_store, ctx.tenant, category)


def suggest_replies(ctx: CommandContext, case: Case) -> None:
    """Offer the new case the published articles that resolved most cases of its category."""
    usage = usage_of(ctx, case.category)
    if usage is None or not usage.articles:
        return

    def is_published(article_id: str) -> bool:
        # Read now, not counted: an article archived since it resolved cases is not offered.
        try:
            return ctx.load(Article, UUID(article_id)).status == "published"
        except AggregateNotFoundError:
            return False

    chosen = suggest(rank(usage.articles, case.subject), is_published)
    case.suggest_replies([UUID(c.article_id) for c in chosen], [c.reason(case.category) for c in chosen])


def count_usage(ctx: CommandContext, case: Case, change: int) -> None:
    """Count the case's article in its category: +1 as it is resolved with it, -1 as it is reopened."""
    assert case.article_id is not None
    usage = usage_of(ctx, case.category) or ArticleUsage(tenant_id=ctx.tenant, category=case.category)
    usage.count(case.article_id, case.id, case.subject, change)
    ctx.keep(usage)
