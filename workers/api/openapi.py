"""The OpenAPI document, saying what the server accepts: FastAPI's document, made exact where it cannot be.

FastAPI describes what the handlers' signatures say. Three things the
handlers read themselves, so that their refusals keep crmflow's words:

- commands: one handler for every command, which hands the body to the
  application service (422 ``invalid_command`` with every problem). The
  document has one operation per command instead, ``POST
  /v1/commands/lead.create`` and so on, each with its payload's JSON Schema
  from the catalogue (the pydantic model that checks it, written exactly:
  ``request_schemas``), so that client generators get one typed method per
  command. A oneOf under the one path
  would need a discriminator in the body, and the name is in the path;
- events: the CloudEvent in structured mode (the required attributes, the
  optional ones, extensions as the CloudEvents spec names them);
- definitions: YAML, under its own media type, with the process documents'
  JSON Schema (``crmflow process schema``).

FastAPI's own 422 answer (``HTTPValidationError``) is never what the server
sends: every 422 is the one error body.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml
from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from crmflow.aggregates.commanding import COMMANDS
from crmflow.processes.loader import YamlLoader
from crmflow.processes.schema_file import json_schema as process_documents_schema
from crmflow.workers.api.examples import DEFINITION_EXAMPLE, INBOUND_EXAMPLE, PAYLOAD_EXAMPLES
from crmflow.workers.api.request_schemas import CLOUD_EVENT_SCHEMA, REF, VALUE_SCHEMAS, PayloadSchemas

COMMAND_PATH = "/v1/commands/{name}"
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

def install_openapi(api: FastAPI) -> None:
    """Build the document once, from FastAPI's, when it is first asked for."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            document = FastAPI.openapi(api)
            _exact(document)
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def _exact(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    paths = document["paths"]
    commands = _command_paths(paths[COMMAND_PATH]["post"], components)
    # In the generic one's place: the document keeps the order of the routes.
    document["paths"] = paths = {
        key: value for path, item in paths.items()
        for key, value in (commands.items() if path == COMMAND_PATH else [(path, item)])
    }  # fmt: skip
    _event_body(paths["/v1/events"]["post"], components)
    for path in ("/v1/processes/validate", "/v1/processes/definitions"):
        _yaml_body(paths[path]["post"], components)
    _one_error_body(paths, components)


def _command_paths(generic: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    specs = [COMMANDS[name] for name in sorted(COMMANDS)]
    refs, definitions = models_json_schema(
        [(spec.payload, "validation") for spec in specs], ref_template=REF, schema_generator=PayloadSchemas
    )
    _add(components, definitions.get("$defs", {}))
    paths = {}
    for spec in specs:
        operation = copy.deepcopy(generic)
        operation["operationId"] = "run_" + spec.name.replace(".", "_").replace("-", "_")
        operation["summary"] = f"{spec.name}: {spec.summary}"
        emits = ", ".join(spec.emits) or "no event"
        operation["description"] = f"{generic['description']} Emits {emits}."
        operation["parameters"] = [p for p in operation["parameters"] if p["in"] != "path"]
        content: dict[str, Any] = {"schema": refs[(spec.payload, "validation")]}
        if spec.name in PAYLOAD_EXAMPLES:
            content["example"] = PAYLOAD_EXAMPLES[spec.name]["value"]
        operation["requestBody"] = {"required": True, "content": {"application/json": content}}
        paths[COMMAND_PATH.replace("{name}", spec.name)] = {"post": operation}
    return paths


def _event_body(operation: dict[str, Any], components: dict[str, Any]) -> None:
    _add(components, {"CloudEvent": CLOUD_EVENT_SCHEMA, **VALUE_SCHEMAS})
    schema = {"$ref": REF.format(model="CloudEvent")}
    operation["requestBody"] = {
        "required": True,
        "content": {
            media: {"schema": schema, "example": INBOUND_EXAMPLE}
            for media in ("application/cloudevents+json", "application/json")
        },
    }


def _yaml_body(operation: dict[str, Any], components: dict[str, Any]) -> None:
    """YAML under its media type, with the documents' schema; text/plain carries the same text."""
    schema = process_documents_schema()
    # The shipped schema is draft-07 ("definitions"); pydantic's own would say "$defs".
    local = schema.pop("definitions", None) or schema.pop("$defs")
    definitions = {name: _rebased(value) for name, value in local.items()}
    _add(components, definitions)
    documents = _rebased({key: value for key, value in schema.items() if key not in ("$schema", "$id")})
    text = {"type": "string", "contentMediaType": "application/yaml", "contentSchema": documents}
    operation["requestBody"] = {
        "required": True,
        "content": {
            # The example as the value the schema describes, read as crmflow reads YAML (`on:` is a key, not
            # YAML 1.1's True); a client's YAML serializer writes it out.
            "application/yaml": {"schema": documents, "example": yaml.load(DEFINITION_EXAMPLE, YamlLoader)},
            "text/plain": {"schema": text, "example": DEFINITION_EXAMPLE},
        },
    }


def _one_error_body(paths: dict[str, Any], components: dict[str, Any]) -> None:
    error_body = {"$ref": REF.format(model="ErrorBody")}
    for item in paths.values():
        for operation in item.values():
            answer = operation.get("responses", {}).get("422")
            if answer is None:
                continue
            for media in answer.get("content", {}).values():
                if media.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                    media["schema"] = error_body
            if answer.get("description") == "Validation Error":
                answer["description"] = "the request is invalid (invalid_request), every problem named"
    for name in FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)


def _add(components: dict[str, Any], schemas: dict[str, Any]) -> None:
    for name, schema in schemas.items():
        if name in components and components[name] != schema:
            raise ValueError(f"two schemas named {name} in the OpenAPI document")
        components[name] = schema


def _rebased(value: Any) -> Any:
    """A JSON Schema's local references (#/$defs/X, #/definitions/X: a $ref or a discriminator's mapping) as
    references into the document's components."""
    if isinstance(value, str) and value.startswith(("#/$defs/", "#/definitions/")):
        return REF.format(model=value.rsplit("/", 1)[1])
    if isinstance(value, dict):
        return {key: _rebased(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rebased(item) for item in value]
    return value
