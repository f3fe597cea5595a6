"""Quick replies: which articles to suggest for a new case, from the counts of what resolved similar ones.

Pure logic, no store: the counts come from the case category's ArticleUsage
record (crmflow.aggregates.article_usage), whether an article is published
from the caller. The rule (docs/domain.md, "Quick replies"):

1. Candidates: the articles that resolved at least one case of the new
   case's category (cases without a category form a category of their own).
2. Ranked by how many of those cases each resolved, most first; then by how
   many words its cases' subjects share with the new subject (lower-cased,
   split on anything that is not a letter or digit, stop words and one-letter
   words dropped); then by article id, so that the order never depends on
   dict order or the database.
3. The first ``MAX_SUGGESTIONS`` that are published now are suggested.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_SUGGESTIONS = 3
WORD = re.compile(r"[^\W_]+")
# Words that say nothing about what a case is about; kept short on purpose (English, as the subjects are).
STOP_WORDS = frozenset(
    "a about after again all am an and any are as at be been before but by can cannot cant could did do does "
    "doesnt dont for from get got had has have having he her hi hello help his how i im in into is isnt it "
    "its just me my no not of on or our please she so some than that the their them then there these they "
    "this to "
    "too up us very was we were what when where which while who why will with wont would you your".split()
)


def subject_words(subject: str | None) -> frozenset[str]:
    """The words of a subject that can tell two cases apart."""
    words = WORD.findall((subject or "").lower())
    return frozenset(w for w in words if len(w) > 1 and w not in STOP_WORDS)


@dataclass(frozen=True)
class Candidate:
    """An article that resolved cases of the category, and what it shares with the new case."""

    article_id: str
    cases: int
    shared_words: tuple[str, ...]  # sorted

    def reason(self, category: str | None) -> str:
        where = f"in category {category}" if category is not None else "without a category"
        line = f"resolved {self.cases} case{'s' if self.cases != 1 else ''} {where}"
        if self.shared_words:
            quoted = ", ".join(f"'{w}'" for w in self.shared_words)
            line += f"; subject shares the word{'s' if len(self.shared_words) > 1 else ''} {quoted}"
        return line


def rank(articles: Mapping[str, Mapping[str, Any]], subject: str | None) -> list[Candidate]:
    """Every article of the counts that resolved a case, best first.

    ``articles``: article id → ``{"cases": n, "words": {word: cases whose subject had it}}``.
    """
    words = subject_words(subject)
    candidates = [
        Candidate(article_id, int(counts["cases"]),
                  tuple(sorted(w for w in words if counts.get("words", {}).get(w, 0) > 0)))
        for article_id, counts in articles.items()
        if int(counts.get("cases", 0)) > 0
    ]  # fmt: skip
    return sorted(candidates, key=lambda c: (-c.cases, -len(c.shared_words), c.article_id))


def suggest(
    candidates: Iterable[Candidate], is_published: Callable[[str], bool], limit: int = MAX_SUGGESTIONS
) -> list[Candidate]:
    """The first ``limit`` candidates that are published, in rank order.

    ``is_published`` is asked in rank order and no more than needed: the caller
    reads each article from the store.
    """
    chosen: list[Candidate] = []
    for candidate in candidates:
        if len(chosen) == limit:
            break
        if is_published(candidate.article_id):
            chosen.append(candidate)
    return chosen


def counted(
    articles: Mapping[str, Mapping[str, Any]], article_id: str, subject: str | None, change: int
) -> dict[str, dict[str, Any]]:
    """The counts after a case of the category was resolved with the article (+1) or reopened (-1).

    A new dict: the old one is an event's state. An article whose count reaches
    0 is dropped, and so is a word whose count does.
    """
    out = {a: {"cases": int(c["cases"]), "words": dict(c.get("words", {}))} for a, c in articles.items()}
    entry = out.setdefault(article_id, {"cases": 0, "words": {}})
    entry["cases"] = max(0, entry["cases"] + change)
    for word in subject_words(subject):
        left = entry["words"].get(word, 0) + change
        if left > 0:
            entry["words"][word] = left
        else:
            entry["words"].pop(word, None)
    if entry["cases"] == 0:
        del out[article_id]
    else:
        entry["words"] = dict(sorted(entry["words"].items()))  # stored in one order
    return out
