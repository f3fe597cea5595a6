"""Duplicate matching: the normalised keys of a lead or contact, and the rules that compare them.

Pure logic, no store: the duplicate key index (crmflow.aggregates.duplicates) looks records up by the
keys worked out here, and the tenant's rules (crmflow.aggregates.duplicate_rules) say which keys must match.

- **E-mail**: trimmed and lower-cased, then compared exactly. Gmail's dots and ``+tag`` are NOT folded:
  that equivalence is one provider's (gmail.com, googlemail.com), not a rule of e-mail; on a company's own
  domain ``ada+sales@`` and ``ada@`` may well be two mailboxes, and a rule may merge, which a false match
  makes costly.
- **Phone**: parsed with ``phonenumbers`` (Google's libphonenumber) and written in E.164 (``+442079460958``).
  A number without ``+`` is read in the tenant's default region; without a region, or when the text is no
  possible number (too short or long for its country), the record has no phone key: it matches nothing
  rather than something wrong. Possible, not valid: a new number range is not yet in the library's data.
- **Company**: accents dropped, case folded, dots deleted (``S.A.`` → ``sa``), other punctuation as spaces,
  whitespace collapsed, then the legal suffixes in ``LEGAL_SUFFIXES`` removed from the end, as often as they
  occur (``Acme Holdings Ltd.`` → ``acme holdings``). A name that is nothing but suffixes keeps them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers

KEYS = ("email", "phone", "company")
ACTIONS = ("flag", "merge")

# Removed from the end of a company name; written as they are after dots are deleted ("G.m.b.H." → "gmbh").
LEGAL_SUFFIXES = frozenset({
    "inc", "incorporated", "corp", "corporation", "co", "llc", "llp", "lp", "ltd", "limited", "plc",  # US, UK
    "gmbh", "ag", "kg", "ug", "ev",  # German-speaking
    "sa", "sas", "sarl", "srl", "spa", "sl", "sc",  # French, Spanish, Italian
    "bv", "nv", "ab", "as", "asa", "oy", "oyj", "aps",  # Dutch, Belgian, Nordic
    "pty", "pte", "kk",  # Australia, Singapore, Japan
})  # fmt: skip

_PUNCTUATION = re.compile(r"[^\w\s]|_")


def normalise_email(raw: str | None) -> str | None:
    """``"  Ada@AE.example "`` → ``"ada@ae.example"``; None for no address."""
    if raw is None:
        return None
    email = raw.strip().lower()
    return email or None


def normalise_phone(raw: str | None, region: str | None) -> str | None:
    """The number in E.164 (``"(020) 7946-0958"`` in GB → ``"+442079460958"``), or None if it is none."""
    if raw is None or not raw.strip():
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None  # no "+" and no region, or not a phone number at all
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_known_region(region: str) -> bool:
    """Whether ``region`` is an ISO 3166 alpha-2 code the phone library has numbering data for."""
    return region in phonenumbers.SUPPORTED_REGIONS


def normalise_company(raw: str | None) -> str | None:
    """``"ACME, Inc."`` and ``"Acme Inc"`` → ``"acme"``; None for no name."""
    if raw is None:
        return None
    text = unicodedata.normalize("NFKD", raw)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace(".", "").replace("'", "").replace("\u2019", "")
    words = _PUNCTUATION.sub(" ", text).split()
    if not words:
        return None
    kept = list(words)
    while kept and kept[-1] in LEGAL_SUFFIXES:
        kept.pop()
    return " ".join(kept or words)


@dataclass(frozen=True)
class Rule:
    """A duplicate rule: a record matches another when every key in ``keys`` is present and equal."""

    name: str
    keys: tuple[str, ...]
    action: str  # "flag" or "merge"

    @property
    def fields(self) -> str:
        """The keys in a fixed order, joined: what the index is kept per (``company+email``)."""
        return "+".join(sorted(self.keys))

    def key(self, normalised: Mapping[str, str | None]) -> str | None:
        """The record's value for this rule (one line per key, in a fixed order), or None if a key is missing."""
        values = [normalised.get(name) for name in sorted(self.keys)]
        if any(value is None for value in values):
            return None
        return "\n".join(f"{name}={value}" for name, value in zip(sorted(self.keys), values, strict=True))


def normalised_keys(
    email: str | None, phone: str | None, company: str | None, region: str | None
) -> dict[str, str | None]:
    return {"email": normalise_email(email), "phone": normalise_phone(phone, region),
            "company": normalise_company(company)}  # fmt: skip
