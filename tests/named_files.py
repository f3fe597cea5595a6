"""The repository files a piece of documentation names (`examples/leads.jsonl`, `processes/definitions/*.yaml`).

A word counts as a file name when it ends in a suffix crmflow's inputs have;
globs must match at least one file. What an example writes (after `--output`
or `>`) and paths under a folder it makes itself (`./demo-data/`, `/app/` in
the image) are the example's own, and so is what a shell comment says.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INPUT_SUFFIXES = (".yaml", ".yml", ".jsonl", ".json", ".md", ".toml", ".py")
WORD = re.compile(r"[@\w.:/*-]+|>")
COMMENT = re.compile(r"(^|\s)#.*$", re.MULTILINE)  # a shell comment describes, it names no input
WRITES = ("--output", "-o", ">", "--data-dir", "--json")
NOT_IN_THE_REPOSITORY = ("./demo-data/", "/", "$")


def named_files(text: str) -> set[str]:
    """The repository-relative file names (or globs) ``text`` mentions as inputs."""
    names = set()
    words = WORD.findall(COMMENT.sub("", text))
    for before, word in zip(["", *words], words):
        word = word.lstrip("@").rstrip(".")
        if before in WRITES or not word.endswith(INPUT_SUFFIXES) or ":" in word:
            continue
        if word.startswith(NOT_IN_THE_REPOSITORY):
            continue
        names.add(word.removeprefix("./"))
    return names


def missing_files(text: str, base: Path = ROOT) -> list[str]:
    """The names in ``text`` that match no file under ``base`` (a glob must match one at least)."""
    return sorted(name for name in named_files(text) if not any(base.glob(name)))
