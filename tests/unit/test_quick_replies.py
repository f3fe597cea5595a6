"""Quick replies: the ranking of the articles that resolved a category's cases, and the counts behind it."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import UUID

from crmflow.aggregates.article_usage import ArticleUsage, article_usage_id
from crmflow.aggregates.case import Case
from crmflow.aggregates.replies import Candidate, counted, rank, subject_words, suggest

A, B, C = (
    "aaaaaaaa-0000-0000-0000-000000000000",
    "bbbbbbbb-0000-0000-0000-000000000000",
    "cccc0000-0000-0000-0000-000000000000",
)
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def test_subject_words_are_lower_cased_without_stop_words_one_letter_words_or_punctuation() -> None:
    assert subject_words("My INVOICE is wrong, please refund it!") == {"invoice", "wrong", "refund"}
    assert subject_words("I can't log-in (2FA)") == {"log", "2fa"}  # "can", "t", "in": stop or one letter
    assert subject_words(None) == frozenset() == subject_words("")


def test_the_article_that_resolved_most_cases_of_the_category_comes_first() -> None:
    counts = {A: {"cases": 2, "words": {"refund": 2}}, B: {"cases": 7, "words": {"invoice": 5, "vat": 1}}}
    ranked = rank(counts, "Refund for my invoice")
    assert ranked == [Candidate(B, 7, ("invoice",)), Candidate(A, 2, ("refund",))]
    assert (
        ranked[0].reason("billing")
        == "resolved 7 cases in category billing; subject shares the word 'invoice'"
    )


def test_with_as_many_cases_the_article_sharing_more_subject_words_comes_first() -> None:
    counts = {A: {"cases": 3, "words": {"refund": 3}}, B: {"cases": 3, "words": {"refund": 1, "invoice": 2}}}
    ranked = rank(counts, "Invoice refund")
    assert [c.article_id for c in ranked] == [B, A]
    assert ranked[0].reason("billing") == (
        "resolved 3 cases in category billing; subject shares the words 'invoice', 'refund'"
    )


def test_a_full_tie_is_broken_by_article_id_whatever_order_the_counts_come_in() -> None:
    counts = {C: {"cases": 1, "words": {}}, A: {"cases": 1, "words": {}}, B: {"cases": 1, "words": {}}}
    assert [c.article_id for c in rank(counts, "anything")] == [A, B, C]
    assert [c.article_id for c in rank(dict(reversed(list(counts.items()))), "anything")] == [A, B, C]
    assert rank(counts, "x")[0].reason(None) == "resolved 1 case without a category"


def test_only_published_articles_are_suggested_and_no_more_than_the_limit_are_asked_about() -> None:
    candidates = [Candidate(a, 5 - i, ()) for i, a in enumerate((A, B, C, "d", "e"))]
    asked: list[str] = []

    def published(article_id: str) -> bool:
        asked.append(article_id)
        return article_id != B  # B was archived since it resolved its cases

    assert [c.article_id for c in suggest(candidates, published, limit=3)] == [A, C, "d"]
    assert asked == [A, B, C, "d"], (
        "each article is read in rank order, and none after the third published one"
    )
    assert suggest(candidates, lambda _a: False) == []


def test_counts_go_up_on_resolve_and_down_on_reopen_without_changing_the_table_they_came_from() -> None:
    one = counted({}, A, "Invoice refund", +1)
    two = counted(one, A, "Invoice copy", +1)
    assert one == {A: {"cases": 1, "words": {"invoice": 1, "refund": 1}}}
    assert two == {A: {"cases": 2, "words": {"copy": 1, "invoice": 2, "refund": 1}}}
    # The first case is reopened: its words go, the others stay; at 0 cases the article goes.
    assert counted(two, A, "Invoice refund", -1) == {A: {"cases": 1, "words": {"copy": 1, "invoice": 1}}}
    assert counted(one, A, "Invoice refund", -1) == {}


def test_a_usage_record_is_one_per_tenant_and_category_and_is_read_back_from_its_latest_event() -> None:
    assert article_usage_id("acme", "billing") != article_usage_id("globex", "billing")
    assert article_usage_id("acme", None) != article_usage_id("acme", "")  # no category ≠ a category named ""
    usage = ArticleUsage(tenant_id="acme", category="billing")
    assert usage.id == article_usage_id("acme", "billing")
    usage.count(UUID(A), UUID(int=1), "Invoice refund", +1)
    usage.count(UUID(B), UUID(int=2), "VAT number", +1)
    latest = usage.pending_events[-1]
    again = ArticleUsage.from_latest(latest, "acme", "billing")
    assert (again.id, again.version, again.articles) == (usage.id, 3, usage.articles)
    again.count(UUID(A), UUID(int=3), "Refund", +1)  # goes on from version 3, as the store expects
    assert again.pending_events[-1].originator_version == 4
    first = ArticleUsage(tenant_id="acme", category=None).pending_events[0]
    assert ArticleUsage.from_latest(first, "acme", None).articles == {}


def test_a_case_records_whether_its_answer_used_a_suggested_article() -> None:
    case = Case.open(
        tenant_id="acme", subject="Invoice wrong", priority="high", channel="email", opened_at=MONDAY_9
    )
    case.suggest_replies([UUID(A)], ["resolved 1 case in category billing"])
    case.suggest_replies([], [])  # nothing to suggest: no event
    case.respond("see the article", MONDAY_9, UUID(B))
    case.respond("or this one", MONDAY_9, UUID(A))
    types = [type(e).__name__ for e in case.pending_events]
    assert types == ["CaseOpened", "CaseRepliesSuggested", "CaseResponded", "CaseResponded"]
    first, second = case.pending_events[2:]
    assert (first.article_id, first.suggested, first.first_response) == (UUID(B), False, True)
    assert (second.article_id, second.suggested, second.first_response) == (UUID(A), True, False)
