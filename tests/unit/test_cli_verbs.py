"""The CLI's verbs: the table `crmflow --help` lists without importing the modules matches them; every help has an example."""

from __future__ import annotations

import argparse

from crmflow.workers.cli import VERBS, build_parser, chosen_verb
from crmflow.workers.cli.needs import VERBS as NEEDS
from tests.named_files import missing_files


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


def _every_parser(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _every_parser(child, (*path, name))


def test_every_verb_and_sub_verb_has_help_with_an_example_of_itself() -> None:
    without = []
    for path, parser in _every_parser(build_parser()):
        text = parser.format_help()
        if "example" not in text or "crmflow " + " ".join(path) not in text:
            without.append(" ".join(("crmflow", *path)))
    assert not without, "no example in the help of: " + ", ".join(without)


def test_every_file_a_help_example_names_is_in_the_repository() -> None:
    missing = {}
    for path, parser in _every_parser(build_parser()):
        if absent := missing_files(parser.epilog or ""):
            missing[" ".join(("crmflow", *path))] = absent
    assert not missing, f"help examples name files the repository does not hold: {missing}"
