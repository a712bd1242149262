"""The Python SDK for forgebot's REST API (asyncio). See ForgeClient."""

from forgebot.sdk.client import ForgeClient
from forgebot.sdk.errors import (
    AuthError,
    ConflictError,
    ForgeAPIError,
    ForgeError,
    ForgeTimeoutError,
    NotFoundError,
)
from forgebot.sdk.models import (
    Attempt,
    CheckResult,
    CleanupReport,
    Comparison,
    Diff,
    Event,
    MergeResult,
    Progress,
    Ranked,
    Task,
    Template,
    TemplateParam,
    Usage,
    Worktree,
)

__all__ = [
    "Attempt",
    "AuthError",
    "CheckResult",
    "CleanupReport",
    "Comparison",
    "ConflictError",
    "Diff",
    "Event",
    "ForgeAPIError",
    "ForgeClient",
    "ForgeError",
    "ForgeTimeoutError",
    "MergeResult",
    "NotFoundError",
    "Progress",
    "Ranked",
    "Task",
    "Template",
    "TemplateParam",
    "Usage",
    "Worktree",
]
