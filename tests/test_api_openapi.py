"""The OpenAPI document against the implementation: the same routes both ways, request schemas that match the
request models, valid JSON Schema, every operation answered once; every response the API tests cause is validated
by tests/api_support.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator

from forgebot.api import PREFIX, bodies
from forgebot.api.openapi import document
from tests.api_support import ApiServer, Conformance, settings
from tests.test_api_tasks import call, create

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


def test_every_schema_is_valid_json_schema() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises, naming what is wrong


async def test_every_documented_operation_answers_as_documented(tmp_path: Path) -> None:
    """One pass through every operation of the document on a real server, each answering with success; the
    conformance middleware validates every response, and at the end every documented operation was seen."""
    config = settings(templates={"docs": {"prompt": "Document {{ topic }}.", "params": ["topic"]}})
    async with ApiServer.start(tmp_path, config) as server:
        token, repo = server.token("all"), str(server.repo)
        async with server.session(token) as http:
            await call(http, "GET", "/openapi.json", 200)
            await call(http, "GET", "/session", 200)
            await call(http, "POST", "/session", 200, json={"token": token})
            await call(http, "DELETE", "/session", 200)
            await call(http, "GET", "/templates", 200, params={"repo": repo})
            body = {"repo": repo, "params": {"topic": "x"}, "agents": ["fast"], "start": False}
            waiting = await call(http, "POST", "/templates/docs/use", 201, json=body)
            task = await create(http, server, agents=["fast", "broken"])
            await server.until_idle(task["id"])
            fast, broken = (a["id"] for a in task["attempts"])
            await call(http, "GET", "/tasks", 200)
            await call(http, "GET", f"/tasks/{task['id']}", 200)
            await call(http, "GET", f"/tasks/{task['id']}/compare", 200)
            fork = {"agent": "fast", "start": False}
            forked = await call(http, "POST", f"/tasks/{task['id']}/attempts", 201, json=fork)
            await call(http, "POST", f"/attempts/{forked['id']}/cancel", 200)
            await call(http, "POST", f"/attempts/{broken}/retry", 200)
            await call(http, "POST", f"/attempts/{fast}/followup", 200, json={"text": "Also add docs"})
            await server.until_idle(task["id"])
            await call(http, "GET", f"/attempts/{fast}", 200)
            await call(http, "POST", "/compare", 200, json={"task_ids": [task["id"]]})
            await call(http, "POST", f"/tasks/{task['id']}/merge", 200, json={"attempt": fast})
            await call(http, "GET", "/progress", 200)
            await call(http, "GET", "/worktrees", 200)
            await call(http, "POST", "/worktrees/cleanup", 200, json={"dry_run": True})
            await call(http, "DELETE", "/attempts", 200, params={"status": "failed"})
            await call(http, "POST", f"/tasks/{waiting['id']}/start", 200)
            await call(http, "POST", f"/tasks/{waiting['id']}/cancel", 200)
            await server.until_idle(waiting["id"])
            await call(http, "DELETE", f"/tasks/{waiting['id']}", 200)
            async with http.get("/api/v1/events") as response:
                assert response.status == 200 and await response.content.readline() == b": subscribed\n"
        for _ in range(200):  # a stream's response is checked when it ends: at the next keep-alive (0.2 s here)
            if ("get", "/events", 200) in server.conformance.seen:
                break
            await asyncio.sleep(0.05)
        answered = {(method, path) for method, path, status in server.conformance.seen if status < 300}
    assert answered == documented()


def test_the_conformance_check_catches_a_response_that_does_not_match() -> None:
    conformance = Conformance()
    conformance.check("/progress", "get", 200, "application/json", {"tasks": 1})
    conformance.check("/progress", "get", 418, "application/json", {})
    conformance.check("/nowhere", "get", 200, "application/json", {})
    *missing, undocumented, unknown = conformance.problems
    assert "GET /progress 200 at top: 'total' is a required property" in missing
    assert "status 418 not documented" in undocumented
    assert "not in the OpenAPI document" in unknown
