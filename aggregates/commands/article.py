"""article.* commands."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from crmflow.aggregates.article import Article
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Name, Text


class CreateArticle(Payload):
    article_id: UUID | None = Field(None, description="choose the id (else one is made)")
    title: Name
    body: Text
    category: Name
    tags: list[Name] = Field(default_factory=list, max_length=20)


class ArticleRef(Payload):
    article_id: UUID


class ReviseArticle(Payload):
    article_id: UUID
    title: Name | None = None
    body: Text | None = None


@command("article.create", CreateArticle, emits=("ArticleCreated",))
def create_article(ctx: CommandContext, p: CreateArticle) -> Article:
    """Write a knowledge-base / FAQ article (status draft)."""
    article_id = ctx.claim_id(Article, p.article_id)
    return ctx.add(
        Article.construct(
            article_id, tenant_id=ctx.tenant, title=p.title, body=p.body,
            category=p.category, tags=list(p.tags),
        )
    )  # fmt: skip


@command("article.publish", ArticleRef, emits=("ArticlePublished",))
def publish_article(ctx: CommandContext, p: ArticleRef) -> Article:
    """Publish the article so cases can be resolved with it."""
    article = ctx.load(Article, p.article_id)
    article.publish()
    return article


@command("article.archive", ArticleRef, emits=("ArticleArchived",))
def archive_article(ctx: CommandContext, p: ArticleRef) -> Article:
    """Archive a published article."""
    article = ctx.load(Article, p.article_id)
    article.archive()
    return article


@command("article.revise", ReviseArticle, emits=("ArticleRevised",))
def revise_article(ctx: CommandContext, p: ReviseArticle) -> Article:
    """Change an article's title or body (not while archived)."""
    article = ctx.load(Article, p.article_id)
    article.revise(p.title, p.body)
    return article
