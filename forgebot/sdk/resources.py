"""The groups of calls on a ForgeClient: `tasks`, `attempts`, `templates`, `worktrees`."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

from forgebot.sdk.errors import ForgeAPIError, ForgeError, ForgeTimeoutError
from forgebot.sdk.models import Attempt, CleanupReport, Comparison, MergeResult, Task, Template, Worktree, known

if TYPE_CHECKING:
    from forgebot.sdk.client import ForgeClient


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


class Tasks:
    def __init__(self, client: ForgeClient) -> None:
        self._client = client

    async def create(
        self,
        title: str,
        *,
        repo: str,
        agents: Sequence[str] = (),
        description: str = "",
        base: str | None = None,
        strategy: str | None = None,
        quality_threshold: float | None = None,
        start: bool = True,
    ) -> Task:
        body = _drop_none(
            title=title,
            repo=repo,
            agents=list(agents),
            description=description,
            base=base,
            strategy=strategy,
            quality_threshold=quality_threshold,
            start=start,
        )
        return Task.from_json(await self._client.request("POST", "/tasks", body=body))

    async def get(self, task_id: int) -> Task:
        return Task.from_json(await self._client.request("GET", f"/tasks/{task_id}"))

    async def list(self, *, repo: str | None = None, status: str | None = None, limit: int = 50) -> list[Task]:
        params = [("limit", str(limit))] + [(k, v) for k, v in (("repo", repo), ("status", status)) if v]
        data = await self._client.request("GET", "/tasks", params=params)
        return [Task.from_json(task) for task in data["tasks"]]

    async def start(self, task_id: int) -> Task:
        return Task.from_json(await self._client.request("POST", f"/tasks/{task_id}/start"))

    async def cancel(self, task_id: int) -> Task:
        return Task.from_json(await self._client.request("POST", f"/tasks/{task_id}/cancel"))

    async def delete(self, task_id: int) -> builtins.list[int]:
        """Delete a finished task with its worktrees and branches; the ids of the attempts deleted."""
        data = await self._client.request("DELETE", f"/tasks/{task_id}")
        return list(data["deleted_attempts"])

    async def merge(self, task_id: int, attempt_id: int, *, rebase: bool = False) -> MergeResult:
        body = {"attempt": attempt_id, "rebase": rebase}
        data = await self._client.request("POST", f"/tasks/{task_id}/merge", body=body)
        return MergeResult(**known(MergeResult, data))


class Attempts:
    def __init__(self, client: ForgeClient) -> None:
        self._client = client

    async def create(self, task_id: int, agent: str, *, model: str | None = None, start: bool = True) -> Attempt:
        """Fork: another attempt on the task."""
        body = _drop_none(agent=agent, model=model, start=start)
        return Attempt.from_json(await self._client.request("POST", f"/tasks/{task_id}/attempts", body=body))

    async def get(self, attempt_id: int) -> Attempt:
        return Attempt.from_json(await self._client.request("GET", f"/attempts/{attempt_id}"))

    async def cancel(self, attempt_id: int) -> Attempt:
        return Attempt.from_json(await self._client.request("POST", f"/attempts/{attempt_id}/cancel"))

    async def retry(self, attempt_id: int) -> Attempt:
        return Attempt.from_json(await self._client.request("POST", f"/attempts/{attempt_id}/retry"))

    async def followup(self, attempt_id: int, text: str, *, start: bool = True) -> Attempt:
        body = {"text": text, "start": start}
        return Attempt.from_json(await self._client.request("POST", f"/attempts/{attempt_id}/followup", body=body))

    async def compare(self, task_id: int) -> Comparison:
        return Comparison.from_json(await self._client.request("GET", f"/tasks/{task_id}/compare"))

    async def compare_many(self, task_ids: Sequence[int]) -> list[Comparison]:
        data = await self._client.request("POST", "/compare", body={"task_ids": list(task_ids)})
        return [Comparison.from_json(c) for c in data["comparisons"]]

    async def delete_where(self, *, status: str | Sequence[str], task_id: int | None = None) -> list[Attempt]:
        """Delete finished attempts with these statuses (of one task, or every task the token sees)."""
        statuses = [status] if isinstance(status, str) else list(status)
        params = [("status", s) for s in statuses] + ([("task", str(task_id))] if task_id is not None else [])
        data = await self._client.request("DELETE", "/attempts", params=params)
        return [Attempt.from_json(a) for a in data["deleted"]]

    @overload
    async def wait_for_completion(self, attempt_id: int, *, timeout: float = ...) -> Attempt: ...  # noqa: ASYNC109

    @overload
    async def wait_for_completion(self, *, task_id: int, timeout: float = ...) -> Task: ...  # noqa: ASYNC109

    async def wait_for_completion(
        self,
        attempt_id: int | None = None,
        *,
        task_id: int | None = None,
        timeout: float = 3600.0,  # noqa: ASYNC109  (the SDK's promise: a ForgeTimeoutError after this long)
    ) -> Attempt | Task:
        """Until the attempt (or every attempt of the task) has finished. Follows the event stream; polls when
        the stream is unavailable or breaks. Raises ForgeTimeoutError (a TimeoutError) after `timeout` seconds."""
        if (attempt_id is None) == (task_id is None):
            raise ValueError("wait_for_completion needs an attempt id or a task_id, not both")
        try:
            async with asyncio.timeout(timeout):
                if attempt_id is not None:
                    return await self._wait(attempt_id, None)
                assert task_id is not None
                return await self._wait(None, task_id)
        except TimeoutError:
            what = f"attempt {attempt_id}" if attempt_id is not None else f"task {task_id}"
            raise ForgeTimeoutError(f"{what} did not finish within {timeout:g} s; it goes on on the server") from None

    async def _wait(self, attempt_id: int | None, task_id: int | None) -> Attempt | Task:
        async def current() -> Attempt | Task:
            return await self.get(attempt_id) if attempt_id is not None else await self._client.tasks.get(task_id or 0)

        owner = (await self.get(attempt_id)).task_id if attempt_id is not None else task_id or 0
        with contextlib.suppress(ForgeError):  # no stream (or a broken one): poll instead
            response = await self._client.open_events([owner])
            try:
                state = await current()  # read after subscribing, so no finishing event can fall in between
                if state.finished:
                    return state
                async for event in self._client.read_events(response):
                    relevant = (attempt_id is None and event.kind == "task_finished") or (
                        event.attempt is not None and event.attempt.id == attempt_id and event.attempt.finished
                    )
                    if relevant and (state := await current()).finished:
                        return state
            finally:
                response.close()
        return await self._poll(current)

    async def _poll(self, current: Callable[[], Awaitable[Attempt | Task]]) -> Attempt | Task:
        while True:
            try:
                state: Attempt | Task | None = await current()
            except ForgeAPIError:
                raise
            except ForgeError:
                state = None  # the server cannot be reached for a moment: try again
            if state is not None and state.finished:
                return state
            await asyncio.sleep(self._client.poll_interval)


class Worktrees:
    def __init__(self, client: ForgeClient) -> None:
        self._client = client

    async def list(self) -> list[Worktree]:
        data = await self._client.request("GET", "/worktrees")
        return [Worktree(**known(Worktree, w)) for w in data["worktrees"]]

    async def cleanup(self, *, dry_run: bool = False, older_than: str | float | None = None) -> CleanupReport:
        body = _drop_none(dry_run=dry_run, older_than=older_than)
        return CleanupReport.from_json(await self._client.request("POST", "/worktrees/cleanup", body=body))


class Templates:
    def __init__(self, client: ForgeClient) -> None:
        self._client = client

    async def list(self, *, repo: str) -> list[Template]:
        data = await self._client.request("GET", "/templates", params=[("repo", repo)])
        return [Template.from_json(t) for t in data["templates"]]

    async def use(
        self,
        name: str,
        *,
        repo: str,
        params: dict[str, str] | None = None,
        agents: Sequence[str] = (),
        base: str | None = None,
        strategy: str | None = None,
        start: bool = True,
    ) -> Task:
        """A task from the template `name` with these parameters (the template's agents unless `agents`)."""
        body = _drop_none(
            repo=repo, params=dict(params or {}), agents=list(agents), base=base, strategy=strategy, start=start
        )
        return Task.from_json(await self._client.request("POST", f"/templates/{name}/use", body=body))
