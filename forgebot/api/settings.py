"""The `api` section of the server file (each key also settable from the environment), validated with errors
that name the key, like the rest of the config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from forgebot.config import ConfigError, Settings

# Environment variable -> key in the `api` section.
_ENVIRONMENT = {"FORGEBOT_API_DASHBOARD_PUBLIC": "dashboard_public"}


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The dashboard and every GET of the API (the event stream too) work without a token; writes still need one.
    dashboard_public: bool = False


def api_settings(settings: Settings, environ: Mapping[str, str]) -> ApiSettings:
    data: dict[str, Any] = dict(settings.api)
    sources: dict[str, str] = {}
    for name, key in _ENVIRONMENT.items():
        raw = environ.get(name)
        if raw:
            data[key] = raw
            sources[key] = f"environment {name}"
    try:
        return ApiSettings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            problems.append(f"{sources.get(key, 'api.' + key)}: {error['msg']}")
        raise ConfigError(*problems) from None
