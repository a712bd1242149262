"""ForgeClient: the REST API from asyncio code.

    async with ForgeClient("http://forgebot:8080", token) as forge:
        task = await forge.tasks.create("Add auth", repo="/srv/repos/app", agents=["claude", "gemini"])
        done = await forge.attempts.wait_for_completion(task_id=task.id, timeout=1800)
        print((await forge.attempts.compare(task.id)).winner)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

import aiohttp

from forgebot.sdk.errors import ForgeError, api_error
from forgebot.sdk.models import Event, Progress, known
from forgebot.sdk.resources import Attempts, Tasks, Templates, Worktrees
from forgebot.sdk.sse import SseParser

Params = Sequence[tuple[str, str]]


class ForgeClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 120.0,
        poll_interval: float = 1.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.poll_interval = poll_interval
        self._session = session
        self._owns_session = session is None
        self.tasks = Tasks(self)
        self.attempts = Attempts(self)
        self.templates = Templates(self)
        self.worktrees = Worktrees(self)

    def __repr__(self) -> str:
        return f"ForgeClient({self.base_url!r})"  # never the token

    async def __aenter__(self) -> ForgeClient:
        self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def _url(self, path: str) -> str:
        return f"{self.base_url}/api/v1{path}"

    async def request(self, method: str, path: str, *, body: Any = None, params: Params = ()) -> Any:
        """One API call: the decoded JSON, or an exception carrying the status and the API's error code."""
        session = self._open()
        try:
            async with session.request(
                method, self._url(path), json=body, params=list(params), headers=self._headers, timeout=self._timeout
            ) as response:
                text = await response.text()
                status = response.status
        except aiohttp.ClientError as error:
            raise ForgeError(f"cannot reach the forgebot server at {self.base_url}: {error}") from error
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if status >= 400:
            raise api_error(status, data)
        if data is None and status != 204:
            raise ForgeError(f"{method} {path}: the server answered {status} without JSON")
        return data

    # -- reading -----------------------------------------------------------------------------------

    async def progress(self, task_ids: Sequence[int] = (), repo: str | None = None) -> Progress:
        params = [("task", str(i)) for i in task_ids] + ([("repo", repo)] if repo else [])
        return Progress(**known(Progress, await self.request("GET", "/progress", params=params)))

    async def open_events(self, task_ids: Sequence[int] = ()) -> aiohttp.ClientResponse:
        """Connect to the event stream; once this returns, every later event will be delivered."""
        session = self._open()
        params = [("task", str(i)) for i in task_ids]
        headers = {**self._headers, "Accept": "text/event-stream"}
        forever = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout.total, sock_read=None)
        try:
            response = await session.get(self._url("/events"), params=params, headers=headers, timeout=forever)
        except aiohttp.ClientError as error:
            raise ForgeError(f"cannot reach the forgebot server at {self.base_url}: {error}") from error
        if response.status >= 400:
            text = await response.text()
            response.release()
            raise api_error(response.status, _json_or_none(text))
        return response

    async def read_events(self, response: aiohttp.ClientResponse) -> AsyncIterator[Event]:
        """The events of an open stream until it ends (the server stopped, or the connection broke)."""
        parser = SseParser()
        try:
            async for raw in response.content:
                parsed = parser.feed(raw.decode("utf-8", "replace").rstrip("\r\n"))
                if parsed is not None:
                    event_id = int(parsed.id) if parsed.id and parsed.id.isdigit() else None
                    yield Event.from_json(event_id, json.loads(parsed.data))
        except aiohttp.ClientError as error:
            raise ForgeError(f"the event stream from {self.base_url} broke: {error}") from error
        finally:
            response.close()

    async def events(self, task_ids: Sequence[int] = ()) -> AsyncIterator[Event]:
        """Engine events as they happen (of these tasks only, when given). Close with `aclose()` or break."""
        response = await self.open_events(task_ids)
        async for event in self.read_events(response):
            yield event


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None



