"""What the SDK raises: every API error carries the HTTP status and the API's error code."""

from __future__ import annotations


class ForgeError(Exception):
    """Anything that went wrong talking to a forgebot server."""


class ForgeAPIError(ForgeError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})")
        self.status = status
        self.code = code
        self.message = message


class AuthError(ForgeAPIError):
    """401: no token, an unknown or a revoked one; 403: the token may not act on that repository."""


class NotFoundError(ForgeAPIError):
    """404: no such task or attempt, or one the token may not see."""


class ConflictError(ForgeAPIError):
    """409: the operation does not fit the current state (deleting a running task, retrying a success...)."""


class ForgeTimeoutError(ForgeError, TimeoutError):
    """A wait ran out of time; the work goes on on the server. Also an instance of the built-in TimeoutError."""


def api_error(status: int, body: object) -> ForgeAPIError:
    code, message = "http_error", f"HTTP {status}"
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = str(body["error"].get("code", code))
        message = str(body["error"].get("message", message))
    kind = {401: AuthError, 403: AuthError, 404: NotFoundError, 409: ConflictError}.get(status, ForgeAPIError)
    return kind(status, code, message)
