"""An editor loads the shipped JSON Schema through each definition's modeline and names what is wrong.

The definitions are read as an editor's YAML language server reads them: YAML 1.2 (ruamel.yaml; `on:` is a
key, dates and times are text), then checked by a JSON Schema validator nobody here wrote (jsonschema).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.exceptions import best_match
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from crmflow.processes.loader import parse_documents
from crmflow.processes.schema_file import (
    MODELINE,
    REGENERATE_COMMAND,
    SCHEMA_FILE,
    SCHEMA_ID,
    json_schema,
    schema_text,
)

DEFINITIONS = SCHEMA_FILE.parent / "definitions"
FILES = sorted([*DEFINITIONS.glob("*.yaml"), *DEFINITIONS.glob("optional/*.yaml")])
MODELINE_PATTERN = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


class Yaml12Core(SafeConstructor):
    """YAML 1.2's core schema has no timestamps: `2026-03-02T09:00:00Z` is a string, as editors see it."""


Yaml12Core.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def yaml_documents(text: str) -> list[Any]:
    reader = YAML(typ="safe", pure=True)
    reader.Constructor = Yaml12Core
    return [d for d in reader.load_all(text) if d is not None]


def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json_schema())


def shipped_documents() -> list[tuple[str, Any]]:
    return [(f"{path.name}:{doc.get('name')}", doc) for path in FILES for doc in yaml_documents(path.read_text())]


def test_the_shipped_schema_file_is_what_the_models_generate() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    generated = schema_text()
    if committed != generated:
        diff = difflib.unified_diff(committed.splitlines(keepends=True), generated.splitlines(keepends=True),
                                    f"{SCHEMA_FILE.name} (committed)", "generated from the models")  # fmt: skip
        pytest.fail(f"processes/{SCHEMA_FILE.name} differs from the models; regenerate it with "
                    f"`{REGENERATE_COMMAND}` (from the repository root) and commit it:\n{''.join(list(diff)[:60])}",
                    pytrace=False)  # fmt: skip


def test_the_schema_is_a_valid_draft_07_schema_with_a_stable_id_and_a_kind_discriminator() -> None:
    schema = json_schema()
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft7Validator
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["$id"] == SCHEMA_ID == "urn:crmflow:process-documents:v1"
    assert schema["discriminator"] == {"propertyName": "kind", "mapping": {
        "Process": "#/definitions/ProcessDefinition", "Calendar": "#/definitions/Calendar",
        "ProcessTest": "#/definitions/ProcessTest", "Segmentation": "#/definitions/Segmentation"}}  # fmt: skip
    assert "oneOf" not in schema, "a plain validator would only say 'not valid under any of the given schemas'"


# Draft-07's keywords (core, validation, annotations), and OpenAPI's `discriminator`, which validators ignore.
DRAFT_07 = {
    "$schema", "$id", "$ref", "$comment", "definitions", "title", "description", "default", "examples",
    "readOnly", "writeOnly", "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "items", "additionalItems", "maxItems", "minItems",
    "uniqueItems", "contains", "maxProperties", "minProperties", "required", "properties", "patternProperties",
    "additionalProperties", "dependencies", "propertyNames", "if", "then", "else", "allOf", "anyOf", "oneOf",
    "not", "format", "contentMediaType", "contentEncoding", "discriminator",
}  # fmt: skip
NAMED_SCHEMAS = ("properties", "patternProperties", "definitions")
ONE_SCHEMA = ("items", "additionalItems", "additionalProperties", "propertyNames", "contains", "if", "then", "else", "not")


def keywords(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key in NAMED_SCHEMAS:
        found |= {k for sub in schema.get(key, {}).values() for k in keywords(sub)}
    for key in ONE_SCHEMA:
        value = schema.get(key)
        found |= {k for sub in (value if isinstance(value, list) else [value]) for k in keywords(sub)}
    for key in ("allOf", "anyOf", "oneOf"):
        found |= {k for sub in schema.get(key, []) for k in keywords(sub)}
    return found


def test_the_schema_speaks_only_draft_07_the_draft_the_yaml_language_server_validates() -> None:
    used = keywords(json_schema())
    assert {"if", "then", "else", "definitions", "additionalProperties"} <= used
    assert used <= DRAFT_07, f"not draft-07: {sorted(used - DRAFT_07)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_shipped_file_starts_with_the_modeline_naming_the_shipped_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == (MODELINE if path.parent == DEFINITIONS else MODELINE.replace("../", "../../"))
    (target,) = MODELINE_PATTERN.fullmatch(first).groups()  # type: ignore[union-attr]
    assert (path.parent / target).resolve() == SCHEMA_FILE.resolve()


@pytest.mark.parametrize(("where", "document"), shipped_documents(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_shipped_document_read_as_yaml_1_2_is_valid_against_the_exported_schema(where: str, document: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(document)]
    assert errors == [], where


WEB_LEAD = (DEFINITIONS / "web-lead-follow-up.yaml").read_text(encoding="utf-8")
CALENDARS = (DEFINITIONS / "calendars.yaml").read_text(encoding="utf-8")
TESTS = (DEFINITIONS / "web-lead-follow-up.test.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("text", "path", "named"), [
    (WEB_LEAD.replace("trigger:", "triger:"), [], "'triger' was unexpected"),
    (WEB_LEAD.replace("  on:", "  onn:", 1), ["trigger"], "'onn' was unexpected"),
    (WEB_LEAD.replace("    args:", "    arg:", 1), ["steps", 1], "'arg' was unexpected"),
    (WEB_LEAD.replace("do: lead.assign", "doo: lead.assign"), ["steps", 1], "'doo'"),
    (WEB_LEAD.replace("on_timeout:", "on_timout:"), ["steps", 2], "'on_timout' was unexpected"),
    (WEB_LEAD.replace("kind: Process", "kind: Proces"), ["kind"], "'Proces' is not one of"),
    (CALENDARS.replace("timezone:", "timezon:", 1), [], "'timezon' was unexpected"),
    (TESTS.replace("advance:", "advanse:", 1), ["steps", 2], "'advanse' was unexpected"),
], ids=["document", "trigger", "step", "step-kind", "wait-step", "kind", "calendar", "test"])  # fmt: skip
def test_a_misspelled_field_is_named_at_its_place_not_lost_in_any_of_the_given_schemas(
    text: str, path: list[Any], named: str
) -> None:
    document = yaml_documents(text)[0]
    best = best_match(validator().iter_errors(document))
    assert best is not None and named in best.message and list(best.absolute_path) == path
    assert "is not valid under any of the given schemas" not in best.message


def test_the_modeline_is_a_comment_so_deploying_a_file_that_gains_it_is_not_a_new_version() -> None:
    # The registry hashes each document's own text (loader.Document.text: from its first key to its end).
    without = WEB_LEAD.removeprefix(MODELINE + "\n")
    assert without != WEB_LEAD
    (before,) = parse_documents(without, "web.yaml")
    (after,) = parse_documents(WEB_LEAD, "web.yaml")
    assert before.text == after.text and MODELINE not in after.text
