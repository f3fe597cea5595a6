"""Duplicate matching keys: e-mail, phone (E.164) and company name normalised; rules built from them."""

from __future__ import annotations

import pytest

from crmflow.aggregates.matching import (
    LEGAL_SUFFIXES,
    Rule,
    normalise_company,
    normalise_email,
    normalise_phone,
    normalised_keys,
)


def test_an_email_address_is_trimmed_and_lower_cased_and_nothing_else() -> None:
    assert normalise_email("  Ada.Lovelace@AE.Example ") == "ada.lovelace@ae.example"
    # Gmail's dots and +tags are not folded: on other domains they may be other mailboxes.
    assert normalise_email("ada.lovelace+crm@gmail.com") == "ada.lovelace+crm@gmail.com"
    assert normalise_email("ada.lovelace+crm@gmail.com") != normalise_email("adalovelace@gmail.com")
    assert normalise_email(None) is None
    assert normalise_email("   ") is None


@pytest.mark.parametrize("written", ["+44 20 7946 0958", "(020) 7946-0958", "020 7946 0958", "+44 (0)20 7946 0958",
                                     "0044 20 7946 0958"])  # fmt: skip
def test_a_london_number_written_five_ways_is_one_e164_number_in_region_gb(written: str) -> None:
    assert normalise_phone(written, "GB") == "+442079460958"


def test_a_number_with_a_country_code_needs_no_region_and_one_without_needs_one() -> None:
    assert normalise_phone("+44 20 7946 0958", None) == "+442079460958"
    assert normalise_phone("+1 (650) 253-0000", "GB") == "+16502530000"  # the + wins over the region
    # Without "+" and without a region, the number cannot be read: no key, so it matches nothing.
    assert normalise_phone("(020) 7946-0958", None) is None
    # Read in Germany, the same digits are a Berlin-style number, not London's.
    assert normalise_phone("(020) 7946-0958", "DE") != "+442079460958"


@pytest.mark.parametrize("junk", ["", "  ", "call me", "12", "+44 20 7946 0958 0958 0958 0958"])
def test_text_that_is_no_possible_number_has_no_phone_key(junk: str) -> None:
    assert normalise_phone(junk, "GB") is None


def test_company_names_lose_case_punctuation_spacing_and_legal_suffixes() -> None:
    assert normalise_company("ACME, Inc.") == normalise_company("Acme Inc") == "acme"
    assert normalise_company("  Analytical   Engines Ltd. ") == "analytical engines"
    assert normalise_company("Siemens AG") == normalise_company("siemens") == "siemens"
    assert normalise_company("Müller G.m.b.H.") == normalise_company("Muller GmbH") == "muller"
    assert normalise_company("Société Générale S.A.") == "societe generale"
    assert normalise_company("Acme Holdings Co., Ltd.") == "acme holdings"  # every trailing suffix goes
    assert normalise_company("Incorporated Widgets LLC") == "incorporated widgets"  # only from the end
    assert normalise_company("Johnson & Johnson") == "johnson johnson"


def test_a_name_that_is_only_a_suffix_keeps_it_and_no_name_has_no_key() -> None:
    assert normalise_company("Ltd.") == "ltd"
    assert normalise_company("...") is None
    assert normalise_company(None) is None


def test_the_documented_suffixes_include_the_usual_ones() -> None:
    assert {"inc", "ltd", "gmbh", "llc", "sa"} <= LEGAL_SUFFIXES


def test_a_rule_key_needs_every_key_present_and_is_the_same_whatever_order_the_rule_names_them() -> None:
    keys = normalised_keys("Ada@AE.example", "(020) 7946-0958", "ACME, Inc.", "GB")
    assert keys == {"email": "ada@ae.example", "phone": "+442079460958", "company": "acme"}
    one = Rule("company-phone", ("phone", "company"), "merge")
    other = Rule("same", ("company", "phone"), "flag")
    assert one.key(keys) == other.key(keys) == "company=acme\nphone=+442079460958"
    assert one.fields == other.fields == "company+phone"
    assert Rule("email", ("email",), "flag").key({**keys, "email": None}) is None
