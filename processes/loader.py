"""Reading YAML process documents, with every problem pinned to file, line and field.

PyYAML's node tree keeps the line of every key and value; pydantic's errors
carry a path (``steps.2.args.owner``). Walking the path down the node tree
gives the line a designer has to look at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from crmflow.aggregates.limits import MAX_DEFINITION_BYTES, LimitExceeded
from crmflow.processes.bounds import check_depth, check_size, check_steps
from crmflow.processes.schema import DOCUMENT_KINDS, STEP_KINDS


@dataclass(frozen=True)
class Issue:
    """One problem in a document: where it is and what is wrong."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True)
class Document:
    """A parsed document: its model and how to find the line of any of its fields."""

    file: str
    model: BaseModel
    node: yaml.Node
    text: str = ""  # this document's own YAML, as written

    @property
    def kind(self) -> str:
        return str(self.model.kind)  # type: ignore[attr-defined]

    def line_of(self, path: tuple[str | int, ...]) -> int:
        return line_of(self.node, path)

    def issue(self, path: tuple[str | int, ...], message: str) -> Issue:
        return Issue(self.file, self.line_of(path), field_name(path), message)


class DocumentsInvalid(Exception):
    """Raised with every issue found, not just the first."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(map(str, issues)))
        self.issues = issues


def _child(node: yaml.Node, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


class YamlLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. (YAML 1.1 reads the key `on:` as True.)"""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def clean_path(path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the union tags pydantic puts in error paths (``steps.1.wait.wait``, ``timeout.str``)."""
    cleaned: list[str | int] = []
    for i, part in enumerate(path):
        after_step_index = i == 2 and path[0] == "steps" and isinstance(path[1], int)
        if (after_step_index and part in STEP_KINDS) or part in ("str", "BusinessTime"):
            continue
        if isinstance(part, str) and "[" in part:  # e.g. "function-after[_check_duration(), str]"
            continue
        cleaned.append(part)
    return tuple(cleaned)


def line_of(node: yaml.Node, path: tuple[str | int, ...]) -> int:
    """The line of the deepest node on the path (where the problem is, or its parent)."""
    for key in path:
        child = _child(node, key)
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def field_name(path: tuple[str | int, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_documents(text: str, file: str) -> list[Document]:
    """Every document of a YAML text as its model; DocumentsInvalid lists all problems.

    Its size and nesting are checked before it is parsed (processes/bounds.py).
    """
    try:
        check_size(text)
        check_depth(text, YamlLoader)
        nodes = list(yaml.compose_all(text, Loader=YamlLoader))
    except LimitExceeded as error:
        line = getattr(error, "line", 1)
        raise DocumentsInvalid([Issue(file, line, "", f"refused before parsing: {error}")]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise DocumentsInvalid(
            [Issue(file, line, "", f"not valid YAML: {getattr(error, 'problem', error)}")]
        ) from None
    documents, issues = [], []
    for node in nodes:
        if node is None:
            continue
        try:
            check_steps(node)
        except LimitExceeded as error:
            issues.append(Issue(file, line_of(node, ("steps",)), "steps", str(error)))
            continue
        try:
            data = YamlLoader("").construct_document(node)
        except (yaml.YAMLError, ValueError) as error:
            # A tag safe YAML does not read (!!python/...), a bad merge key, an integer of over 4,300 digits.
            mark = getattr(error, "problem_mark", None) or node.start_mark
            problem = getattr(error, "problem", None) or str(error)
            if isinstance(error, ValueError):
                problem = str(LimitExceeded("integer_range", "an integer has more digits than a 64-bit one"))
            issues.append(Issue(file, mark.line + 1, "", f"not valid YAML here: {problem}"))
            continue
        if not isinstance(data, dict):
            issues.append(
                Issue(
                    file,
                    node.start_mark.line + 1,
                    "",
                    "a document must be a mapping with apiVersion and kind",
                )
            )
            continue
        model = DOCUMENT_KINDS.get(str(data.get("kind")))
        if model is None:
            kinds = ", ".join(DOCUMENT_KINDS)
            issues.append(
                Issue(
                    file,
                    line_of(node, ("kind",)),
                    "kind",
                    f"{data.get('kind')!r} is not a document kind: use one of {kinds}",
                )
            )
            continue
        try:
            own_text = text[node.start_mark.index : node.end_mark.index].strip() + "\n"
            documents.append(Document(file, model.model_validate(data), node, own_text))
        except ValidationError as error:
            for path, e in _specific_errors(error):
                issues.append(Issue(file, line_of(node, path), field_name(path), _message(e)))
    if issues:
        raise DocumentsInvalid(issues)
    return documents


# A union field (a timeout: a duration string or {business, calendar}) fails
# once per branch; the branch whose type did not even match says nothing useful.
BRANCH_MISMATCH = {"string_type", "model_type", "dict_type", "model_attributes_type"}


def _specific_errors(error: ValidationError) -> list[tuple[tuple[str | int, ...], Any]]:
    errors = [(clean_path(tuple(e["loc"])), e) for e in error.errors()]
    paths = [path for path, _ in errors]

    def shadowed(path: tuple[str | int, ...], e: Any) -> bool:
        others = sum(1 for p in paths if p[: len(path)] == path)
        return e["type"] in BRANCH_MISMATCH and others > 1

    specific = [(path, e) for path, e in errors if not shadowed(path, e)]
    # Every branch of a union can shadow every other (a step that is no kind of step): then all of them
    # say what is wrong. Never none: a document refused without an issue would vanish, and its file pass.
    return specific or errors


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "extra_forbidden":
        return "unknown field (not part of the process language)"
    return message


def load_files(paths: list[Path]) -> list[Document]:
    """Every document of every file; DocumentsInvalid with the issues of all files."""
    documents, issues = [], []
    for path in paths:
        try:
            size = Path(path).stat().st_size
            if size > MAX_DEFINITION_BYTES:  # not even read
                limit = LimitExceeded("definition_bytes", f"the file is {size:,} bytes")
                issues.append(Issue(str(path), 1, "", f"refused before parsing: {limit}"))
                continue
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            issues.append(Issue(str(path), 1, "", f"cannot read the file: {error}"))
            continue
        try:
            documents += parse_documents(text, str(path))
        except DocumentsInvalid as invalid:
            issues += invalid.issues
    if issues:
        raise DocumentsInvalid(issues)
    return documents
