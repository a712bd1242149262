"""A scripted fake LLM server for end-to-end tests of real agent CLIs.

One server speaks four wire formats; the route decides which: Anthropic Messages (`/v1/messages`), OpenAI Chat
Completions (`/chat/completions`), OpenAI Responses (`/responses`) and Gemini
(`/v1beta/models/M:streamGenerateContent`).
It plays a script instead of thinking. The newest user prompt may hold directives:

    @@fake-write <rel/path>        write the lines that follow, up to `@@end`
    <content lines>
    @@end
    @@fake-shell <command>         run a one-line shell command
    @@fake-sleep <seconds>         wait that long before every answer (to test agent timeouts)
    @@fake-error <status>          anywhere in a request body: answer with that HTTP error

Without write/shell directives the script writes `hello.txt`. Each model request plays the next step as one tool call,
picked from the tools the CLI offered; once the steps are used up it answers with a final text.

Use it in-process (`async with FakeLLM() as llm`), from a background thread (`with run_in_thread() as llm`), or as a
program: `python tests/fake_llm.py --port 0 --port-file F [--log FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import posixpath
import re
import shlex
import signal
import sys
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from aiohttp import web

JSON = dict[str, Any]

DEFAULT_PATH = "hello.txt"
DEFAULT_CONTENT = "Hello from the fake LLM"
DEFAULT_FINAL_TEXT = "Done: wrote the file."
MODEL_IDS = ("fake-model",)

# Tool names per CLI (agents-reference §1.1), in order of preference.
WRITE_TOOLS = ("Write", "write_file", "write", "create", "create_file")
SHELL_TOOLS = ("Bash", "bash", "run_shell_command", "shell", "shell_command", "exec_command", "local_shell")
PATCH_TOOL = "apply_patch"

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"})


class ScriptError(ValueError):
    """The request cannot be answered by the script (no tool fits the step, body is not JSON, ...): sent as HTTP 400."""


# ======== script: directives in the newest user prompt ========


@dataclass(frozen=True)
class WriteStep:
    path: str
    content: str


@dataclass(frozen=True)
class ShellStep:
    command: str


Step = WriteStep | ShellStep


@dataclass(frozen=True)
class Script:
    steps: tuple[Step, ...]
    sleep: float = 0.0


# Whitespace around the tokens is loose because Gemini CLI and Qwen Code rewrite it (they treat `@x` as file refs).
_DIRECTIVE = re.compile(
    r"@@\s*fake-write[ \t]+(?P<path>\S+)(?P<content>.*?)@@\s*end\b"
    r"|@@\s*fake-shell[ \t]+(?P<command>(?:(?!@@)[^\r\n])+)",
    re.DOTALL,
)
_SLEEP = re.compile(r"@@\s*fake-sleep[ \t]+(?P<seconds>\d+(?:\.\d+)?)")
_ERROR = re.compile(r"@@\s*fake-error[ \t]+(?P<status>\d+)")


def file_text(content: str) -> str:
    """File contents end with a newline, like the ones editors and agents write."""
    return content if not content or content.endswith("\n") else content + "\n"


def _write_content(raw: str) -> str:
    """The file a write directive describes: its content lines, each ending with a newline."""
    # `raw` runs from after the path to `@@end`: drop the rest of the path line and the newline before `@@end`.
    head = re.match(r"[ \t]*\r?\n", raw)
    body = raw[head.end() :] if head else raw.lstrip(" \t")
    if not body:
        return ""
    return re.sub(r"(?:\r?\n)?[ \t]*\Z", "", body, count=1).replace("\r\n", "\n") + "\n"


def _quotes_balance(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:
        return False
    return True


def _shell_directive(command: str) -> str:
    # OpenCode wraps a multi-line prompt in double quotes, so a shell directive on the last line gains a closing quote.
    command = command.strip()
    stray = command[-1:] in ("'", '"') and not _quotes_balance(command) and _quotes_balance(command[:-1])
    return command[:-1].rstrip() if stray else command


def parse_script(prompt: str, default: WriteStep) -> Script:
    """The steps and sleep a prompt asks for; `default` is the script of a prompt without steps."""
    steps: list[Step] = []
    for match in _DIRECTIVE.finditer(prompt):
        if match["path"] is not None:
            steps.append(WriteStep(match["path"], _write_content(match["content"])))
        else:
            steps.append(ShellStep(_shell_directive(match["command"])))
    sleep = _SLEEP.search(prompt)
    return Script(tuple(steps) or (default,), float(sleep["seconds"]) if sleep else 0.0)


def error_directive(raw_body: str) -> int | None:
    match = _ERROR.search(raw_body)
    return int(match["status"]) if match else None


def shell_command(step: Step) -> str:
    """A shell step as is; a write step as a printf that recreates the file byte for byte."""
    if isinstance(step, ShellStep):
        return step.command
    write = f"printf '%s' {shlex.quote(step.content)} > {shlex.quote(step.path)}"
    parent = posixpath.dirname(step.path)
    return f"mkdir -p {shlex.quote(parent)} && {write}" if parent else write


def search_replace_blocks(steps: tuple[Step, ...]) -> str:
    """Aider's diff edit format: an empty SEARCH section creates the file."""
    blocks = [
        f"{step.path}\n```\n<<<<<<< SEARCH\n=======\n{step.content}>>>>>>> REPLACE\n```\n"
        for step in steps
        if isinstance(step, WriteStep)
    ]
    return "\n".join(blocks)


# ======== tools: which call plays a step ========


@dataclass(frozen=True)
class Tool:
    name: str
    schema: JSON
    freeform: bool = False  # a Responses "custom" tool: its input is raw text, not JSON arguments


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: JSON | str  # a str only for freeform tools


def _dict(value: Any) -> JSON:
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[JSON]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _properties(schema: JSON) -> JSON:
    return _dict(schema.get("properties"))


def _schema_type(schema: Any) -> str:
    kind = _dict(schema).get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return str(kind).lower() if kind else ""


def _pick(properties: JSON, preferred: tuple[str, ...], hint: str, default: str) -> str:
    for key in preferred:
        if key in properties:
            return key
    return next((key for key in properties if hint in key.lower()), default)


def _filler(name: str, schema: Any, cwd: str | None) -> Any:
    """A harmless value for a required parameter the script has no opinion about (e.g. Copilot's `description`)."""
    enum = _dict(schema).get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = _schema_type(schema)
    if kind in ("integer", "number"):
        return 60000 if name.lower().endswith("ms") else 60
    fillers: dict[str, Any] = {"boolean": False, "array": [], "object": {}}
    if kind in fillers:
        return fillers[kind]
    return (cwd or ".") if "dir" in name.lower() or "cwd" in name.lower() else "fake LLM step"


def _with_required(tool: Tool, arguments: JSON, cwd: str | None) -> JSON:
    required = tool.schema.get("required")
    properties = _properties(tool.schema)
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in arguments:
            arguments[name] = _filler(name, properties.get(name), cwd)
    return arguments


def _write_call(tool: Tool, step: WriteStep, cwd: str | None) -> ToolCall:
    properties = _properties(tool.schema)
    path_key = _pick(properties, ("file_path", "filePath", "path", "filename", "file"), "path", "file_path")
    content_key = _pick(properties, ("content", "file_text", "contents", "text"), "content", "content")
    path = step.path if cwd is None or posixpath.isabs(step.path) else posixpath.join(cwd, step.path)
    return ToolCall(tool.name, _with_required(tool, {path_key: path, content_key: step.content}, cwd))


def _patch_call(tool: Tool, step: WriteStep, cwd: str | None) -> ToolCall:
    added = "".join(f"+{line}\n" for line in step.content.splitlines())
    patch = f"*** Begin Patch\n*** Add File: {step.path}\n{added}*** End Patch\n"
    if tool.freeform:
        return ToolCall(tool.name, patch)
    properties = _properties(tool.schema)
    key = next((name for name, spec in properties.items() if _schema_type(spec) == "string"), "input")
    return ToolCall(tool.name, _with_required(tool, {key: patch}, cwd))


def _shell_call(tool: Tool, command: str, cwd: str | None) -> ToolCall:
    properties = _properties(tool.schema)
    key = "cmd" if "cmd" in properties and "command" not in properties else "command"
    value: Any = ["bash", "-lc", command] if _schema_type(properties.get(key)) == "array" else command
    return ToolCall(tool.name, _with_required(tool, {key: value}, cwd))


def plan_call(step: Step, tools: list[Tool], cwd: str | None) -> ToolCall:
    """The tool call that plays `step`: a write tool, else apply_patch, else the shell (always for shell steps)."""
    by_name = {tool.name: tool for tool in tools}
    if isinstance(step, WriteStep):
        writer = next((by_name[name] for name in WRITE_TOOLS if name in by_name), None)
        if writer is not None:
            return _write_call(writer, step, cwd)
        if PATCH_TOOL in by_name:
            return _patch_call(by_name[PATCH_TOOL], step, cwd)
    shell = next((by_name[name] for name in SHELL_TOOLS if name in by_name), None)
    if shell is None:
        offered = ", ".join(sorted(by_name)) or "none"
        raise ScriptError(f"fake LLM: no tool can play {step!r}; tools offered: {offered}")
    return _shell_call(shell, shell_command(step), cwd)


# Phrases the CLIs use for their working directory: Claude "Primary working directory: /x", Gemini/Qwen "I'm currently
# working in the directory: /x", OpenCode "Working directory: /x", Codex "<cwd>/x</cwd>".
_CWD = re.compile(
    r"(?:working directory|working in the directory)(?: is)?:?[ \t]*(?P<plain>/[^\s<>\"'`]*)"
    r"|<cwd>\s*(?P<tagged>/[^<]*?)\s*</cwd>",
    re.IGNORECASE,
)


def _strings(value: Any) -> Iterator[str]:
    # Tool descriptions are skipped: they talk about working directories in general.
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "tools":
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def find_cwd(body: JSON) -> str | None:
    """The agent's working directory, when the request mentions it (so write tools get absolute paths)."""
    for text in _strings(body):
        match = _CWD.search(text)
        if match:
            return (match["plain"] or match["tagged"]).rstrip(".,;:)")
    return None


# ======== conversation: the newest prompt and the calls made since ========


@dataclass(frozen=True)
class Turn:
    prompt: str | None = None  # the text of a user prompt (tool results are not prompts)
    calls: int = 0  # tool calls the assistant made in this message


def newest_prompt(turns: list[Turn]) -> tuple[str, int]:
    """The newest user prompt and how many tool calls the assistant has made since it."""
    starts = [index for index, turn in enumerate(turns) if turn.prompt is not None]
    start = starts[-1] if starts else -1
    prompt = turns[start].prompt if starts else None
    return prompt or "", sum(turn.calls for turn in turns[start + 1 :])


def _text(content: Any) -> str:
    """The text of a message content: a string, or a list of parts that carry `text`."""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in _dicts(content) if isinstance(part.get("text"), str))


@dataclass(frozen=True)
class Answer:
    call: ToolCall | None = None
    text: str = ""


def decide(wire: Wire, body: JSON, script: Script, done: int, final_text: str) -> Answer:
    """The answer to a request whose script has had `done` steps played already."""
    tools = wire.tools(body)
    if not tools:
        # Aider and side queries (titles, commit messages) send no tools.
        blocks = search_replace_blocks(script.steps) if "SEARCH/REPLACE" in wire.system_text(body) else ""
        return Answer(text=blocks or final_text)
    if done < len(script.steps):
        return Answer(call=plan_call(script.steps[done], tools, find_cwd(body)))
    return Answer(text=final_text)


# ======== wire formats ========


@dataclass(frozen=True)
class Exchange:
    """What a reply needs besides the answer."""

    body: JSON
    path: str
    query: Mapping[str, str]
    model: str
    input_tokens: int
    output_tokens: int


def _id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def _json_arguments(call: ToolCall) -> JSON:
    return call.arguments if isinstance(call.arguments, dict) else {"input": call.arguments}


def _encoded_arguments(call: ToolCall) -> str:
    return call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)


def sse_response(events: list[tuple[str | None, JSON | str]]) -> web.Response:
    """Server-sent events: `event:` lines only for formats that name their events."""
    chunks = []
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        chunks.append((f"event: {name}\n" if name else "") + f"data: {payload}\n\n")
    return web.Response(text="".join(chunks), content_type="text/event-stream", headers={"Cache-Control": "no-cache"})


class Wire(ABC):
    """One protocol: how to read tools and turns from a request and how to shape replies and errors."""

    @abstractmethod
    def tools(self, body: JSON) -> list[Tool]: ...

    @abstractmethod
    def turns(self, body: JSON) -> list[Turn]: ...

    @abstractmethod
    def system_text(self, body: JSON) -> str: ...

    @abstractmethod
    def reply(self, exchange: Exchange, answer: Answer) -> web.Response: ...

    @abstractmethod
    def error_body(self, status: int, message: str) -> JSON: ...


class AnthropicMessages(Wire):
    _ERROR_TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }

    def tools(self, body: JSON) -> list[Tool]:
        return [
            Tool(tool["name"], _dict(tool.get("input_schema")))
            for tool in _dicts(body.get("tools"))
            if isinstance(tool.get("name"), str)
        ]

    def turns(self, body: JSON) -> list[Turn]:
        return [self._turn(message) for message in _dicts(body.get("messages"))]

    @staticmethod
    def _turn(message: JSON) -> Turn:
        blocks = _dicts(message.get("content"))
        if message.get("role") == "assistant":
            return Turn(calls=sum(block.get("type") == "tool_use" for block in blocks))
        is_result = any(block.get("type") == "tool_result" for block in blocks)
        text = _text(message.get("content"))
        return Turn(prompt=text if message.get("role") == "user" and text and not is_result else None)

    def system_text(self, body: JSON) -> str:
        return _text(body.get("system"))

    def reply(self, exchange: Exchange, answer: Answer) -> web.Response:
        block, start, delta = self._block(answer)
        usage = {
            "input_tokens": exchange.input_tokens,
            "output_tokens": exchange.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        stop_reason = "tool_use" if answer.call else "end_turn"
        message = {
            "id": _id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": exchange.model,
            "content": [block],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        if not exchange.body.get("stream"):
            return web.json_response(message)
        # Like the real API, message_start carries the input tokens and message_delta the final output count.
        opening = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        return sse_response(
            [
                ("message_start", {"type": "message_start", "message": opening}),
                ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                        "usage": {"output_tokens": exchange.output_tokens},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ]
        )

    @staticmethod
    def _block(answer: Answer) -> tuple[JSON, JSON, JSON]:
        """The content block, its streamed opening and the one delta that completes it."""
        if answer.call is None:
            text_block = {"type": "text", "text": answer.text}
            return text_block, {"type": "text", "text": ""}, {"type": "text_delta", "text": answer.text}
        arguments = _json_arguments(answer.call)
        block = {"type": "tool_use", "id": _id("toolu_"), "name": answer.call.name, "input": arguments}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(arguments)}
        return block, {**block, "input": {}}, delta

    def error_body(self, status: int, message: str) -> JSON:
        kind = self._ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}


def openai_error_body(status: int, message: str) -> JSON:
    kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}
    fallback = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind.get(status, fallback), "param": None, "code": None}}


class ChatCompletions(Wire):
    def tools(self, body: JSON) -> list[Tool]:
        functions = [_dict(tool.get("function")) for tool in _dicts(body.get("tools"))]
        return [Tool(fn["name"], _dict(fn.get("parameters"))) for fn in functions if isinstance(fn.get("name"), str)]

    def turns(self, body: JSON) -> list[Turn]:
        turns = []
        for message in _dicts(body.get("messages")):
            if message.get("role") == "user":
                turns.append(Turn(prompt=_text(message.get("content")) or None))
            else:
                calls = len(_dicts(message.get("tool_calls"))) if message.get("role") == "assistant" else 0
                turns.append(Turn(calls=calls))
        return turns

    def system_text(self, body: JSON) -> str:
        messages = _dicts(body.get("messages"))
        return "\n".join(_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))

    def reply(self, exchange: Exchange, answer: Answer) -> web.Response:
        usage = {
            "prompt_tokens": exchange.input_tokens,
            "completion_tokens": exchange.output_tokens,
            "total_tokens": exchange.input_tokens + exchange.output_tokens,
        }
        base = {"id": _id("chatcmpl-"), "created": int(time.time()), "model": exchange.model}
        message, delta, finish = self._message(answer)
        if not exchange.body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            return web.json_response({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        chunk = {**base, "object": "chat.completion.chunk"}
        events: list[tuple[str | None, JSON | str]] = [
            (None, {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
            (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
        ]
        if _dict(exchange.body.get("stream_options")).get("include_usage"):
            events.append((None, {**chunk, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return sse_response(events)

    @staticmethod
    def _message(answer: Answer) -> tuple[JSON, JSON, str]:
        """The whole assistant message, the streamed delta that carries it, and the finish reason."""
        if answer.call is None:
            message: JSON = {"role": "assistant", "content": answer.text}
            return message, message, "stop"
        function = {"name": answer.call.name, "arguments": _encoded_arguments(answer.call)}
        tool_call = {"id": _id("call_"), "type": "function", "function": function}
        called: JSON = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
        return called, {"role": "assistant", "tool_calls": [{"index": 0, **tool_call}]}, "tool_calls"

    def error_body(self, status: int, message: str) -> JSON:
        return openai_error_body(status, message)


class Responses(Wire):
    _CALL_TYPES = frozenset({"function_call", "custom_tool_call", "local_shell_call"})

    def tools(self, body: JSON) -> list[Tool]:
        tools = []
        for tool in _dicts(body.get("tools")):
            if isinstance(tool.get("name"), str) and tool.get("type") in ("function", "custom"):
                tools.append(Tool(tool["name"], _dict(tool.get("parameters")), freeform=tool["type"] == "custom"))
        return tools

    def turns(self, body: JSON) -> list[Turn]:
        items = body.get("input")
        if isinstance(items, str):
            return [Turn(prompt=items)]
        return [self._turn(item) for item in _dicts(items)]

    def _turn(self, item: JSON) -> Turn:
        if item.get("type") in self._CALL_TYPES:
            return Turn(calls=1)
        if item.get("role") == "user" and item.get("type", "message") == "message":
            return Turn(prompt=_text(item.get("content")) or None)
        return Turn()

    def system_text(self, body: JSON) -> str:
        items = _dicts(body.get("input"))
        parts = [_text(i.get("content")) for i in items if i.get("role") in ("system", "developer")]
        return "\n".join([_text(body.get("instructions")), *parts])

    def reply(self, exchange: Exchange, answer: Answer) -> web.Response:
        item = self._item(answer)
        usage = {
            "input_tokens": exchange.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": exchange.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": exchange.input_tokens + exchange.output_tokens,
        }
        response = {
            "id": _id("resp_"),
            "object": "response",
            "created_at": int(time.time()),
            "model": exchange.model,
            "status": "completed",
            "output": [item],
            "usage": usage,
        }
        # Codex only speaks SSE; a client that explicitly asks for no stream gets the plain response object.
        if exchange.body.get("stream") is False:
            return web.json_response(response)
        return sse_response(self._events(response, item, answer))

    @staticmethod
    def _events(response: JSON, item: JSON, answer: Answer) -> list[tuple[str | None, JSON | str]]:
        pending = {**response, "status": "in_progress", "output": [], "usage": None}
        events: list[JSON] = [
            {"type": "response.created", "response": pending},
            {"type": "response.output_item.added", "output_index": 0, "item": Responses._opening(item)},
        ]
        if answer.call is None:
            events.append(
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "delta": answer.text,
                }
            )
        events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
        events.append({"type": "response.completed", "response": response})
        return [(event["type"], {**event, "sequence_number": n}) for n, event in enumerate(events)]

    @staticmethod
    def _item(answer: Answer) -> JSON:
        call = answer.call
        if call is None:
            content = [{"type": "output_text", "text": answer.text, "annotations": []}]
            return {
                "type": "message",
                "id": _id("msg_"),
                "status": "completed",
                "role": "assistant",
                "content": content,
            }
        if isinstance(call.arguments, str):
            return {
                "type": "custom_tool_call",
                "id": _id("ctc_"),
                "status": "completed",
                "call_id": _id("call_"),
                "name": call.name,
                "input": call.arguments,
            }
        return {
            "type": "function_call",
            "id": _id("fc_"),
            "status": "completed",
            "call_id": _id("call_"),
            "name": call.name,
            "arguments": json.dumps(call.arguments),
        }

    @staticmethod
    def _opening(item: JSON) -> JSON:
        """The item as announced before its content streams in."""
        emptied = {"message": ("content", []), "function_call": ("arguments", ""), "custom_tool_call": ("input", "")}
        key, empty = emptied[item["type"]]
        return {**item, "status": "in_progress", key: empty}

    def error_body(self, status: int, message: str) -> JSON:
        return openai_error_body(status, message)


class Gemini(Wire):
    _STATUS_NAMES: ClassVar[dict[int, str]] = {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }

    def tools(self, body: JSON) -> list[Tool]:
        declarations = [d for tool in _dicts(body.get("tools")) for d in _dicts(tool.get("functionDeclarations"))]
        return [
            Tool(d["name"], _dict(d.get("parametersJsonSchema") or d.get("parameters")))
            for d in declarations
            if isinstance(d.get("name"), str)
        ]

    def turns(self, body: JSON) -> list[Turn]:
        turns = []
        for content in _dicts(body.get("contents")):
            parts = _dicts(content.get("parts"))
            if content.get("role") == "model":
                turns.append(Turn(calls=sum("functionCall" in part for part in parts)))
            elif any("functionResponse" in part for part in parts):
                turns.append(Turn())
            else:
                turns.append(Turn(prompt=_text(parts) or None))
        return turns

    def system_text(self, body: JSON) -> str:
        instruction = body.get("systemInstruction")
        return instruction if isinstance(instruction, str) else _text(_dict(instruction).get("parts"))

    def reply(self, exchange: Exchange, answer: Answer) -> web.Response:
        if answer.call is None:
            part: JSON = {"text": answer.text}
        else:
            part = {"functionCall": {"name": answer.call.name, "args": _json_arguments(answer.call)}}
        chunk = {
            "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {
                "promptTokenCount": exchange.input_tokens,
                "candidatesTokenCount": exchange.output_tokens,
                "totalTokenCount": exchange.input_tokens + exchange.output_tokens,
            },
            "modelVersion": exchange.model,
            "responseId": _id(""),
        }
        if not exchange.path.endswith(":streamGenerateContent"):
            return web.json_response(chunk)
        # Without ?alt=sse the real API streams one JSON array of chunks.
        return sse_response([(None, chunk)]) if exchange.query.get("alt") == "sse" else web.json_response([chunk])

    def error_body(self, status: int, message: str) -> JSON:
        name = self._STATUS_NAMES.get(status, "INVALID_ARGUMENT" if status < 500 else "INTERNAL")
        return {"error": {"code": status, "message": message, "status": name}}


# ======== routes ========

ANTHROPIC = AnthropicMessages()
CHAT = ChatCompletions()
RESPONSES = Responses()
GEMINI = Gemini()


@dataclass(frozen=True)
class Route:
    kind: str  # "generate", "count" (token counting) or "models" (model list)
    wire: Wire
    model: str | None = None
    count_field: str = ""


_VERSIONS = r"(?:/v\d+\w*)*"  # "", "/v1", "/v1beta": base URLs differ in whether they end with a version
_POST_ROUTES = (
    (re.compile(_VERSIONS + r"/messages/count_tokens"), Route("count", ANTHROPIC, count_field="input_tokens")),
    (re.compile(_VERSIONS + r"/messages"), Route("generate", ANTHROPIC)),
    (re.compile(_VERSIONS + r"/chat/completions"), Route("generate", CHAT)),
    (re.compile(_VERSIONS + r"/responses"), Route("generate", RESPONSES)),
)
_GEMINI_ROUTE = re.compile(
    _VERSIONS + r"/models/(?P<model>[^/:]+):(?P<method>streamGenerateContent|generateContent|countTokens)"
)
_MODELS_ROUTE = re.compile(_VERSIONS + r"/models/?")


def route_for(method: str, path: str) -> Route | None:
    if method == "GET":
        return Route("models", CHAT) if _MODELS_ROUTE.fullmatch(path) else None
    if method != "POST":
        return None
    for pattern, route in _POST_ROUTES:
        if pattern.fullmatch(path):
            return route
    gemini = _GEMINI_ROUTE.fullmatch(path)
    if gemini is None:
        return None
    if gemini["method"] == "countTokens":
        return Route("count", GEMINI, gemini["model"], count_field="totalTokens")
    return Route("generate", GEMINI, gemini["model"])


def model_list() -> JSON:
    # OpenAI's list shape plus the fields Anthropic's /v1/models adds, so either kind of client can read it.
    models = [
        {"id": m, "object": "model", "type": "model", "created": 0, "owned_by": "fake-llm", "display_name": m}
        for m in MODEL_IDS
    ]
    return {"object": "list", "data": models, "has_more": False}


# ======== the server ========


def _parse_body(raw: str) -> Any:
    """The JSON body, or the raw text when it is not JSON (kept for the log; answered with a 400)."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _append_line(path: Path, entry: JSON) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")


class FakeLLM:
    """The server. `async with FakeLLM() as llm:` serves on 127.0.0.1 at `llm.url`; `llm.requests` logs requests."""

    def __init__(
        self,
        *,
        input_tokens: int = 120,
        output_tokens: int = 30,
        final_text: str = DEFAULT_FINAL_TEXT,
        error_status: int | None = None,
        path: str = DEFAULT_PATH,
        content: str = DEFAULT_CONTENT,
        port: int = 0,
        log_path: str | Path | None = None,
    ) -> None:
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError(f"token counts must be >= 0, got input {input_tokens} and output {output_tokens}")
        if error_status is not None and not 400 <= error_status <= 599:
            raise ValueError(f"error_status must be an HTTP error status 400-599, got {error_status}")
        if not path.strip():
            raise ValueError("path of the default write step must not be empty")
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.final_text = final_text
        self.error_status = error_status
        self.default_step = WriteStep(path, file_text(content))
        self.log_path = Path(log_path) if log_path is not None else None
        self.requests: list[JSON] = []
        self.port = port
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the fake LLM is not running: use `async with FakeLLM()` or run_in_thread()")
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget the recorded requests (the log file keeps them)."""
        self.requests.clear()

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the fake LLM is already running")
        app = web.Application(client_max_size=64 * 1024 * 1024)  # long agent conversations exceed the 1 MB default
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._closing = asyncio.Event()
        # handler_cancellation: an agent killed mid-request (timeout tests) must not leave a sleeping handler behind.
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is None:
            return
        self._closing.set()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> FakeLLM:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = (await request.read()).decode("utf-8", errors="replace")
        body = _parse_body(raw)
        self._record(request, body)
        route = route_for(request.method, request.path)
        if route is None:
            message = f"fake LLM: no route for {request.method} {request.path}"
            return web.json_response({"error": {"type": "not_found_error", "message": message}}, status=404)
        try:
            return await self._answer(route, request, raw, body)
        except ScriptError as exc:
            return web.json_response(route.wire.error_body(400, str(exc)), status=400)

    async def _answer(self, route: Route, request: web.Request, raw: str, body: Any) -> web.Response:
        status = self.error_status or error_directive(raw)
        if status is not None:
            if not 400 <= status <= 599:
                raise ScriptError(f"fake LLM: @@fake-error needs an HTTP error status 400-599, got {status}")
            return web.json_response(route.wire.error_body(status, f"fake LLM: injected HTTP {status}"), status=status)
        if route.kind == "models":
            return web.json_response(model_list())
        if not isinstance(body, dict):
            raise ScriptError(f"fake LLM: request body must be a JSON object, got {raw[:80]!r}")
        if route.kind == "count":
            return web.json_response({route.count_field: self.input_tokens})
        prompt, done = newest_prompt(route.wire.turns(body))
        script = parse_script(prompt, self.default_step)
        answer = decide(route.wire, body, script, done, self.final_text)
        await self._sleep(script.sleep)
        model = route.model or str(body.get("model") or MODEL_IDS[0])
        exchange = Exchange(body, request.path, request.query, model, self.input_tokens, self.output_tokens)
        return route.wire.reply(exchange, answer)

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        # Closing the server ends the wait, so stopping it never hangs on a sleeping request.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _record(self, request: web.Request, body: Any) -> None:
        headers = {key: "<redacted>" if key.lower() in SECRET_HEADERS else v for key, v in request.headers.items()}
        entry = {
            "time": datetime.now(UTC).isoformat(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": headers,
            "body": body,
        }
        self.requests.append(entry)
        if self.log_path is not None:
            _append_line(self.log_path, entry)


class ThreadedFakeLLM:
    """A FakeLLM served by its own event loop in a background thread, for synchronous tests of real CLIs."""

    def __init__(self, llm: FakeLLM) -> None:
        self.llm = llm
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-llm", daemon=True)
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(llm.start(), self._loop).result(timeout=10)
        except BaseException:
            self._stop_loop()
            raise

    @property
    def url(self) -> str:
        return self.llm.url

    @property
    def requests(self) -> list[JSON]:
        return self.llm.requests

    def reset(self) -> None:
        self.llm.reset()

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.llm.close(), self._loop).result(timeout=10)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ThreadedFakeLLM:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_in_thread(**options: Any) -> ThreadedFakeLLM:
    """Start a FakeLLM (same keyword options) in a background thread; call `.stop()` or use it as a context manager."""
    return ThreadedFakeLLM(FakeLLM(**options))


# ======== program ========


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Scripted fake LLM server (Anthropic, OpenAI, Gemini wire formats).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--port-file", type=Path, help="write the bound port here (atomically)")
    parser.add_argument("--log", type=Path, help="append every request to this file as a JSON line")
    parser.add_argument("--input-tokens", type=int, default=120)
    parser.add_argument("--output-tokens", type=int, default=30)
    parser.add_argument("--final-text", default=DEFAULT_FINAL_TEXT)
    parser.add_argument("--error-status", type=int, help="answer every request with this HTTP error status")
    parser.add_argument("--path", default=DEFAULT_PATH, help="file the default script writes")
    parser.add_argument("--content", default=DEFAULT_CONTENT, help="text the default script writes")
    return parser


def _write_atomically(path: Path, text: str) -> None:
    # Readers poll for the file: they must never see it half written.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


async def _serve(llm: FakeLLM, port_file: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with llm:
        if port_file is not None:
            _write_atomically(port_file, str(llm.port))
        print(f"fake LLM listening on {llm.url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        llm = FakeLLM(
            input_tokens=args.input_tokens,
            output_tokens=args.output_tokens,
            final_text=args.final_text,
            error_status=args.error_status,
            path=args.path,
            content=args.content,
            port=args.port,
            log_path=args.log,
        )
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(_serve(llm, args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
