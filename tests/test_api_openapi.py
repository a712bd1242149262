"""The OpenAPI document against the implementation: the same routes both ways, request schemas that match the
request models, valid JSON Schema; every response the API tests cause is validated by tests/api_support.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

from forgebot.api import PREFIX, bodies
from forgebot.api.openapi import document
from tests.api_support import ApiServer, Conformance

METHODS = {"get", "post", "put", "patch", "delete"}
BOUNDS = {
    *("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
    *("minLength", "maxLength", "minItems", "maxItems"),
}


def routes_of(api: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in api.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds one beside every GET
        assert route.resource is not None
        found.add((route.method.lower(), route.resource.canonical.removeprefix(PREFIX)))
    return found


def documented() -> set[tuple[str, str]]:
    return {(method, path) for path, item in document()["paths"].items() for method in item if method in METHODS}


async def test_every_route_is_documented_and_every_documented_route_exists(tmp_path: Path) -> None:
    async with ApiServer.start(tmp_path) as server:
        implemented = routes_of(server.api)
    assert implemented == documented()
    assert len(implemented) >= 18


@pytest.mark.parametrize(
    ("schema", "model"),
    [
        ("CreateTask", bodies.CreateTask),
        ("UseTemplate", bodies.UseTemplate),
        ("CreateAttempt", bodies.CreateAttempt),
        ("Followup", bodies.Followup),
        ("Merge", bodies.Merge),
        ("CompareMany", bodies.CompareMany),
        ("Cleanup", bodies.Cleanup),
    ],
)
def test_request_schemas_match_the_request_models(schema: str, model: type[bodies.BaseModel]) -> None:
    spec = document()["components"]["schemas"][schema]
    assert set(spec["properties"]) == set(model.model_fields)
    assert set(spec.get("required", [])) == {name for name, f in model.model_fields.items() if f.is_required()}
    assert spec["additionalProperties"] is False  # the models forbid extra keys too
    properties = model.model_json_schema()["properties"]
    for name, field in properties.items():
        assert bounds(spec["properties"][name]) == bounds(field), f"{schema}.{name}: limits differ"


def bounds(schema: Any, where: str = "") -> set[tuple[str, object]]:
    """The numeric and length limits of a property, and of its items (alternatives of `anyOf` flattened)."""
    found: set[tuple[str, object]] = set()
    if isinstance(schema, list):
        return {bound for part in schema for bound in bounds(part, where)}
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in BOUNDS:
                found.add((where + key, value))
            elif key in ("anyOf", "oneOf", "items"):
                found |= bounds(value, where + "items." if key == "items" else where)
    return found


def test_every_schema_is_valid_json_schema_and_every_ref_resolves() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises, naming what is wrong
    conformance = Conformance()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for status, response in operation["responses"].items():
                ref = response.get("$ref", "")
                target = doc["components"]["responses"][ref.rsplit("/", 1)[1]] if ref else response
                for content_type in target.get("content", {}):
                    conformance.check(path, method, int(status), content_type, _example(content_type))
    # Empty bodies fail most schemas; what matters is that every reference was followed (else it raises) and
    # every documented response has a schema.
    assert not [p for p in conformance.problems if "not documented" in p or "not in the OpenAPI" in p]


def _example(content_type: str) -> object:
    return "" if content_type != "application/json" else {}


def test_the_conformance_check_catches_a_response_that_does_not_match() -> None:
    conformance = Conformance()
    conformance.check("/progress", "get", 200, "application/json", {"tasks": 1})
    conformance.check("/progress", "get", 418, "application/json", {})
    conformance.check("/nowhere", "get", 200, "application/json", {})
    *missing, undocumented, unknown = conformance.problems
    assert "GET /progress 200 at top: 'total' is a required property" in missing
    assert "status 418 not documented" in undocumented
    assert "not in the OpenAPI document" in unknown
