"""Request bodies: parsed strictly (unknown keys and wrong types are refused with the key named)."""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from forgebot.api.errors import ApiError
from forgebot.config import parse_duration
from forgebot.core.models import Strategy

MAX_ID = 2**63 - 1  # the largest id SQLite (and PostgreSQL's bigint) can hold
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TaskOptions(_Body):
    """What every way of creating a task takes."""

    repo: str = Field(min_length=1)
    agents: list[str] = Field(default_factory=list)
    base: str | None = None
    strategy: Strategy | None = Field(default=None, strict=False)  # "parallel" or "cascade"
    quality_threshold: float | None = Field(default=None, ge=0, le=1)
    start: bool = True


class CreateTask(TaskOptions):
    title: str = Field(min_length=1, max_length=500)
    description: str = ""


class UseTemplate(TaskOptions):
    params: dict[str, str] = Field(default_factory=dict)


class CreateAttempt(_Body):
    agent: str = Field(min_length=1)
    model: str | None = None
    start: bool = True


class Followup(_Body):
    text: str = Field(min_length=1)
    start: bool = True


class Merge(_Body):
    attempt: Id
    rebase: bool = False


class CompareMany(_Body):
    task_ids: list[Id] = Field(min_length=1, max_length=100)


class CreateSession(_Body):
    token: str = Field(min_length=1, max_length=4096)


class Cleanup(_Body):
    dry_run: bool = False
    older_than: str | float | None = None  # a duration: 3600, "90m", "24h"

    def seconds(self) -> float:
        if self.older_than is None:
            return 0.0
        try:
            return parse_duration(self.older_than)
        except ValueError as error:
            raise ApiError(422, "invalid", f"older_than: {error}") from None


B = TypeVar("B", bound=_Body)


async def read_body(request: web.Request, model: type[B], *, optional: bool = False) -> B:
    """The JSON body as `model`: 400 when it is not a JSON object, 422 naming the first key that is wrong."""
    raw = await request.read()
    if not raw.strip() and optional:
        return model()
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", f"the body must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(422, "invalid", f"{where}: {first['msg']}") from None
