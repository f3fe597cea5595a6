"""The CLI's verb table (what `crmflow --help` lists without importing the modules) matches the modules."""

from __future__ import annotations

import argparse

from crmflow.workers.cli import VERBS, build_parser, chosen_verb
from crmflow.workers.cli.needs import VERBS as NEEDS


def _registered(parser: argparse.ArgumentParser) -> dict[str, str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help or "" for choice in sub._choices_actions}


def test_every_verb_is_listed_with_the_help_line_and_module_that_register_it() -> None:
    for module in {m for m, _ in VERBS.values()}:
        full = _registered(build_parser([module]))
        own = {verb: help_line for verb, (m, help_line) in VERBS.items() if m == module}
        assert {verb: full[verb] for verb in own} == own, f"VERBS differs from crmflow.workers.cli.{module}"
    assert set(_registered(build_parser())) == set(VERBS), "a module registers a verb VERBS does not list"


def test_the_verb_is_found_after_the_top_level_options() -> None:
    assert chosen_verb(["--database-url", "x.db", "--debug", "command", "lead.create"]) == "command"
    assert chosen_verb(["--help"]) is None


def test_the_dependency_table_names_only_verbs_that_exist() -> None:
    assert {verb[0] for verb in NEEDS} <= set(VERBS)
