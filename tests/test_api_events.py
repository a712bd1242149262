"""GET /api/v1/events: server-sent events in order, filters, keep-alives, clean ends, no leaked subscribers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from forgebot.engine.events import EngineEvent, EventKind
from tests.api_support import AGENTS, ApiServer, fake, settings
from tests.support import PYTHON, make_repo
from tests.test_api_tasks import call, create


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer.start(tmp_path) as server:
        yield server


def listeners(server: ApiServer) -> int:
    return len(server.engine.bus._listeners)


class Stream:
    """Reads one SSE response line by line: events (id, data) and comments."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def next_event(self, timeout: float = 30) -> tuple[int, dict[str, Any]] | None:
        """The next event, or None at the end of the stream."""
        fields: dict[str, str] = {}
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(": ")
                fields[name] = value
            elif "data" in fields:
                return int(fields["id"]), json.loads(fields["data"])


async def open_stream(http: aiohttp.ClientSession, query: str = "") -> tuple[aiohttp.ClientResponse, Stream]:
    response = await http.get("/api/v1/events" + query)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = Stream(response)
    assert await response.content.readline() == b": subscribed\n"
    assert await response.content.readline() == b"\n"
    return response, stream


async def test_status_events_arrive_in_order_with_increasing_ids(server: ApiServer) -> None:
    async with server.session(server.token("t")) as http:
        response, stream = await open_stream(http)
        task = await create(http, server, agents=["fast"])
        seen: list[tuple[int, dict[str, Any]]] = []
        while not seen or seen[-1][1]["kind"] != "task_finished":
            event = await stream.next_event()
            assert event is not None
            seen.append(event)
        response.close()
    assert [i for i, _ in seen] == list(range(1, len(seen) + 1))
    assert all(e["task_id"] == task["id"] for _, e in seen)
    assert seen[0][1]["kind"] == "task_created"
    statuses = [e["attempt"]["status"] for _, e in seen if e["kind"] in ("attempt_added", "attempt_status")]
    assert statuses == ["queued", "preparing", "running", "checking", "succeeded"]


async def test_the_task_filter_and_a_limited_token_only_see_their_tasks(server: ApiServer) -> None:
    other = make_repo(server.root / "other")
    limited = server.token("team", repos=(str(server.repo),))
    async with server.session(server.token("admin")) as admin, server.session(limited) as team:
        first = await create(admin, server, agents=["fast"], start=False)
        _, only_first = await open_stream(admin, f"?task={first['id']}")
        _, team_stream = await open_stream(team)
        body = {"title": "x", "repo": str(other), "agents": ["fast"]}
        elsewhere = await call(admin, "POST", "/tasks", 201, json=body)
        await server.until_idle(elsewhere["id"])
        await call(admin, "POST", f"/tasks/{first['id']}/start", 200)
        event = await only_first.next_event()
        assert event is not None and event[0] == 1 and event[1]["task_id"] == first["id"]
        event = await team_stream.next_event()
        assert event is not None and event[1]["task_id"] == first["id"]  # nothing of the other repository came first
        await call(admin, "GET", "/events?task=999", 404)


async def test_keep_alive_comments_flow_while_nothing_happens(server: ApiServer) -> None:
    async with server.session(server.token("t")) as http:
        response, _ = await open_stream(http)
        line = await asyncio.wait_for(response.content.readline(), 10)
        assert line == b": keep-alive\n"
        response.close()


async def test_a_client_that_goes_away_leaves_no_subscriber_behind(server: ApiServer) -> None:
    baseline = listeners(server)
    async with server.session(server.token("t")) as http:
        responses = [(await open_stream(http))[0] for _ in range(3)]
        assert listeners(server) == baseline + 3
        for response in responses:
            response.close()
    for _ in range(200):  # noticed at the next keep-alive write at the latest (0.2 s here)
        if listeners(server) == baseline:
            break
        await asyncio.sleep(0.05)
    assert listeners(server) == baseline


async def test_streams_end_cleanly_when_the_server_stops(server: ApiServer) -> None:
    baseline = listeners(server)
    async with server.session(server.token("t")) as http:
        _, stream = await open_stream(http)
        server.ctx.stopping.set()  # what the app's on_shutdown does
        assert await stream.next_event() is None
    assert listeners(server) == baseline


async def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout(server: ApiServer) -> None:
    """The client reads the headers, then nothing: once the sockets' buffers are full a write waits, and after
    write_timeout the server ends the stream and unsubscribes (fewer events than the queue holds: the write
    timeout does it, not the queue running over)."""
    server.ctx.write_timeout = 0.5
    baseline = listeners(server)
    token = server.token("t")
    async with server.session(token) as http:
        task = await create(http, server, start=False)
    (queued,) = await server.engine.attempts(task["id"])
    attempt = dataclasses.replace(queued, final_message="x" * 50_000)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    reader, writer = await asyncio.open_connection(sock=sock)
    request = f"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    writer.write(request.encode())
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    for _ in range(30):  # 300 events of 50 kB: far more than the buffers hold, far fewer than the queue
        for _ in range(10):
            server.engine.bus.publish(EngineEvent(EventKind.ATTEMPT_STATUS, task["id"], attempt))
        await asyncio.sleep(0.01)
    for _ in range(200):
        if listeners(server) == baseline:
            break
        await asyncio.sleep(0.05)
    assert listeners(server) == baseline
    writer.close()


async def test_a_stream_too_far_behind_ends_after_what_it_had_queued(server: ApiServer) -> None:
    baseline = listeners(server)
    async with server.session(server.token("t")) as http:
        task = await create(http, server, start=False)
        _, stream = await open_stream(http)
        for _ in range(1001):  # without yielding to the stream: its queue (1000) runs over
            server.engine.bus.publish(EngineEvent(EventKind.ATTEMPT_STATUS, task["id"]))
        assert listeners(server) == baseline
        ids = []
        while (event := await stream.next_event()) is not None:
            ids.append(event[0])
        assert ids == list(range(1, 1001)) and "too far behind: reconnect" in stream.comments


async def test_revoking_a_token_ends_its_open_streams(server: ApiServer) -> None:
    baseline = listeners(server)
    async with server.session(server.token("doomed")) as doomed, server.session(server.token("kept")) as kept:
        _, ending = await open_stream(doomed)
        kept_response, _ = await open_stream(kept)
        await asyncio.to_thread(server.ctx.tokens.revoke, "doomed")
        assert await asyncio.wait_for(ending.next_event(), 10) is None  # noticed at the next keep-alive (0.2 s)
        assert "token revoked" in ending.comments
        assert await asyncio.wait_for(kept_response.content.readline(), 10) == b": keep-alive\n"
        assert listeners(server) == baseline + 1
        kept_response.close()


async def test_secrets_are_masked_in_every_agent_written_field_in_responses_and_events(tmp_path: Path) -> None:
    """An agent (or a check) that echoes a secret: its progress, error, final message, check output and log tail
    all go out masked, in the attempt's JSON and on the event stream."""
    message = '::forgebot {"message": "done with s3cret-in-logs"}'
    refused = '::forgebot {"error": "s3cret-in-logs was refused"}'
    agents = {
        **AGENTS,
        "leaky": fake("say", "using s3cret-in-logs now", "say", message, "write", "x.txt", "x"),
        "erring": fake("say", refused),
    }
    leak = {"name": "leak", "run": [PYTHON, "-c", "print('check saw s3cret' + '-in-logs')"], "timeout": 60}
    async with ApiServer.start(tmp_path, settings(agents=agents, checks=[leak])) as server, server.session(
        server.token("t")
    ) as http:
        response, stream = await open_stream(http)
        task = await create(http, server, agents=["leaky", "erring"])
        raw: list[dict[str, Any]] = []
        while not raw or raw[-1]["kind"] != "task_finished":
            event = await stream.next_event()
            assert event is not None
            raw.append(event[1])
        response.close()
        attempt, erring = [await call(http, "GET", f"/attempts/{a['id']}", 200) for a in task["attempts"]]
        listed = await call(http, "GET", f"/tasks/{task['id']}", 200)
    sent = json.dumps([raw, attempt, erring, listed])
    assert "s3cret-in-logs" not in sent
    assert "using *** now" in json.dumps(raw)  # the progress line went out on the stream, masked
    assert attempt["final_message"] == "done with ***" and erring["error"].endswith("*** was refused")
    assert attempt["checks"][0]["output_tail"].strip() == "check saw ***"
    assert "using *** now" in attempt["log_tail"]
