"""The OpenAPI 3.1 document (openapi.yaml beside this module), served at /api/v1/openapi.json without a token."""

from __future__ import annotations

import functools
import importlib.resources
from typing import Any

import yaml
from aiohttp import web


@functools.cache
def document() -> dict[str, Any]:
    text = importlib.resources.files("forgebot.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


async def get_openapi(_request: web.Request) -> web.Response:
    return web.json_response(document())


def add_routes(api: web.Application) -> None:
    api.router.add_get("/openapi.json", get_openapi)
