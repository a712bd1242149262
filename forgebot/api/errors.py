"""Errors as JSON: {"error": {"code": ..., "message": ...}} with the right status, whatever went wrong."""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from forgebot.agents.base import AgentUnavailable
from forgebot.config import ConfigError
from forgebot.engine.housekeeping import EngineError
from forgebot.engine.workspaces import MergeConflict, MergeRefused, WorkspaceError
from forgebot.store import NotFound
from forgebot.store.tokens import TokenExists

log = structlog.get_logger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def _response(status: int, code: str, message: str) -> web.Response:
    return web.json_response(error_body(code, message), status=status)


def as_api_error(error: Exception) -> ApiError | None:
    """The API error for what the engine, the store or git raised (None: a bug, answered with 500)."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, NotFound):
        return not_found(str(error))
    if isinstance(error, MergeConflict | MergeRefused):
        return ApiError(409, "merge_refused", str(error))
    if isinstance(error, WorkspaceError):
        return ApiError(422, "repository", str(error))
    if isinstance(error, ConfigError | AgentUnavailable):
        return ApiError(422, "config", str(error))
    if isinstance(error, TokenExists):
        return ApiError(409, "conflict", str(error))
    if isinstance(error, EngineError):
        return ApiError(409, "conflict", str(error))  # the operation does not fit the current state
    return None


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = error.reason.lower().replace(" ", "_")
        return _response(error.status, code, f"{error.reason}: {request.method} {request.path}")
    except Exception as error:
        api_error = as_api_error(error)
        if api_error is None:
            log.exception("api_request_failed", method=request.method, path=request.path)
            return _response(500, "internal", "internal error; the server log has the details")
        return _response(api_error.status, api_error.code, api_error.message)
