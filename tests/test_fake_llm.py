"""The fake LLM server, driven with requests shaped like the real CLIs' (agents-reference §1.1)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fake_llm import (
    FakeLLM,
    ShellStep,
    ThreadedFakeLLM,
    Tool,
    WriteStep,
    find_cwd,
    parse_script,
    plan_call,
    run_in_thread,
    shell_command,
)

pytestmark = pytest.mark.timeout(20)

JSON = dict[str, Any]
FAKE_LLM = Path(__file__).parent / "fake_llm.py"
HELLO = "Hello from the fake LLM\n"
DONE = "Done: wrote the file."
DEFAULT_STEP = WriteStep("hello.txt", HELLO)
TWO_STEPS = (
    "Do it.\n@@fake-write hello.txt\nHello from the fake LLM\n@@end\n@@fake-shell printf 'shell ok\\n' > shell.txt"
)


def schema(*required: str, **properties: str) -> JSON:
    return {"type": "object", "properties": {k: {"type": v} for k, v in properties.items()}, "required": list(required)}


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, str, str]:
    data = body if isinstance(body, str) else json.dumps(body)
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as response:
        return response.status, response.content_type, await response.text()


def sse(text: str) -> list[tuple[str | None, Any]]:
    """(event name, decoded data) per server-sent event."""
    events = []
    for chunk in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in chunk.splitlines())
        data = fields["data"]
        events.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return events


# ======== Anthropic Messages (Claude Code) ========

CLAUDE_TOOLS = [
    {
        "name": "Bash",
        "description": "Runs in the working directory.",
        "input_schema": schema("command", command="string"),
    },
    {"name": "Edit", "input_schema": schema("file_path", file_path="string", old_string="string")},
    {"name": "Write", "input_schema": schema("file_path", "content", file_path="string", content="string")},
]


def claude_body(prompt: str, history: list[JSON] | None = None, stream: bool = True) -> JSON:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": stream,
        "system": [
            {"type": "text", "text": "You are Claude Code."},
            {"type": "text", "text": "# Environment\n - Primary working directory: /work/claude-repo\n - Git: yes"},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                    {"type": "text", "text": prompt},
                ],
            },
            *(history or []),
        ],
        "tools": CLAUDE_TOOLS,
    }


def claude_round_trip(tool_use: JSON) -> list[JSON]:
    result = {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "File created successfully"}
    return [{"role": "assistant", "content": [tool_use]}, {"role": "user", "content": [result]}]


async def test_anthropic_stream_tool_call_then_final_text(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    url = f"{llm.url}/v1/messages?beta=true"
    status, content_type, text = await post(http, url, claude_body("Create hello.txt"))
    assert (status, content_type) == (200, "text/event-stream")
    events = sse(text)
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 120
    start = events[1][1]["content_block"]
    assert (start["type"], start["name"], start["input"]) == ("tool_use", "Write", {})
    arguments = json.loads(events[2][1]["delta"]["partial_json"])
    assert arguments == {"file_path": "/work/claude-repo/hello.txt", "content": HELLO}
    assert events[4][1]["delta"]["stop_reason"] == "tool_use"
    assert events[4][1]["usage"] == {"output_tokens": 30}

    tool_use = {**start, "input": arguments}
    _, _, text = await post(http, url, claude_body("Create hello.txt", claude_round_trip(tool_use)))
    events = sse(text)
    assert events[1][1]["content_block"] == {"type": "text", "text": ""}
    assert events[2][1]["delta"] == {"type": "text_delta", "text": DONE}
    assert events[4][1]["delta"]["stop_reason"] == "end_turn"


async def test_anthropic_without_stream_answers_one_json_message(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    status, content_type, text = await post(http, f"{llm.url}/messages", claude_body(TWO_STEPS, stream=False))
    message = json.loads(text)
    assert (status, content_type, message["type"]) == (200, "application/json", "message")
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 120,
        "output_tokens": 30,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    [write] = message["content"]
    assert write["id"].startswith("toolu_") and write["input"]["file_path"] == "/work/claude-repo/hello.txt"

    history = claude_round_trip(write)
    message = json.loads((await post(http, f"{llm.url}/v1/messages", claude_body(TWO_STEPS, history, False)))[2])
    [shell] = message["content"]
    assert (shell["name"], shell["input"]) == ("Bash", {"command": "printf 'shell ok\\n' > shell.txt"})

    history += claude_round_trip(shell)
    message = json.loads((await post(http, f"{llm.url}/v1/messages", claude_body(TWO_STEPS, history, False)))[2])
    assert (message["content"], message["stop_reason"]) == ([{"type": "text", "text": DONE}], "end_turn")


async def test_steps_play_in_order_counting_calls_since_the_newest_prompt(
    llm: FakeLLM, http: aiohttp.ClientSession
) -> None:
    old_call = {"type": "tool_use", "id": "toolu_old", "name": "Bash", "input": {"command": "true"}}
    newest = "Now:\n@@fake-write a.txt\none\n@@end\n@@fake-shell ls\n@@fake-write b/c.txt\ntwo\n@@end"
    history = [*claude_round_trip(old_call), {"role": "user", "content": newest}]
    played = []
    for _ in range(4):
        message = json.loads((await post(http, f"{llm.url}/v1/messages", claude_body("old", history, False)))[2])
        [block] = message["content"]
        played.append(block.get("input") or block["text"])
        if block["type"] == "tool_use":
            history += claude_round_trip(block)
    assert played == [
        {"file_path": "/work/claude-repo/a.txt", "content": "one\n"},
        {"command": "ls"},
        {"file_path": "/work/claude-repo/b/c.txt", "content": "two\n"},
        DONE,
    ]


# ======== OpenAI Chat Completions (Qwen Code, OpenCode, Copilot, Aider) ========

QWEN_TOOLS = [
    {"type": "function", "function": {"name": "read_file", "parameters": schema("path", path="string")}},
    {
        "type": "function",
        "function": {"name": "write_file", "parameters": schema(file_path="string", content="string")},
    },
    {"type": "function", "function": {"name": "run_shell_command", "parameters": schema(command="string")}},
]


def qwen_body(prompt: str, history: list[JSON] | None = None, include_usage: bool = True) -> JSON:
    body: JSON = {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "You are Qwen Code."},
            {"role": "user", "content": "Setting up the context.\nI'm currently working in the directory: /work/qwen"},
            {"role": "assistant", "content": "Got it. Thanks for the context!"},
            {"role": "user", "content": [{"type": "text", "text": prompt}]},
            *(history or []),
        ],
        "tools": QWEN_TOOLS,
        "stream": True,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def chat_round_trip(tool_call: JSON) -> list[JSON]:
    call = {key: tool_call[key] for key in ("id", "type", "function")}
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "ok"},
    ]


async def test_chat_stream_tool_call_then_final_text(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    url = f"{llm.url}/v1/chat/completions"
    mangled = "@@fake-write  hello.txt\nHello from the fake LLM\n@@end"
    status, content_type, text = await post(http, url, qwen_body(mangled))
    assert (status, content_type) == (200, "text/event-stream")
    events = [data for name, data in sse(text)]
    assert all(name is None for name, _ in sse(text))
    first, finish, usage, done = events
    assert first["object"] == "chat.completion.chunk"
    [call] = first["choices"][0]["delta"]["tool_calls"]
    assert (call["index"], call["type"], call["function"]["name"]) == (0, "function", "write_file")
    assert json.loads(call["function"]["arguments"]) == {"file_path": "/work/qwen/hello.txt", "content": HELLO}
    assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    assert done == "[DONE]"

    _, _, text = await post(http, url, qwen_body("again", chat_round_trip(call), include_usage=False))
    first, finish, done = [data for _, data in sse(text)]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": DONE}
    assert finish["choices"][0]["finish_reason"] == "stop"


async def test_chat_without_stream_answers_a_completion(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    # Copilot: create{path,file_text}; bash requires a description too.
    tools = [
        {"type": "function", "function": {"name": "create", "parameters": schema(path="string", file_text="string")}},
        {
            "type": "function",
            "function": {
                "name": "bash",
                "parameters": schema("command", "description", command="string", description="string"),
            },
        },
    ]
    messages: list[JSON] = [{"role": "user", "content": TWO_STEPS}]
    url = f"{llm.url}/chat/completions"
    replies = []
    for _ in range(3):
        _, _, text = await post(http, url, {"model": "fake-model", "messages": messages, "tools": tools})
        reply = json.loads(text)
        replies.append(reply)
        for call in reply["choices"][0]["message"].get("tool_calls") or []:
            messages += chat_round_trip(call)
    write, shell, final = (reply["choices"][0] for reply in replies)
    assert json.loads(write["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "path": "hello.txt",
        "file_text": HELLO,
    }
    assert json.loads(shell["message"]["tool_calls"][0]["function"]["arguments"]) == {
        "command": "printf 'shell ok\\n' > shell.txt",
        "description": "fake LLM step",
    }
    assert (write["finish_reason"], write["message"]["content"]) == ("tool_calls", None)
    assert (final["message"], final["finish_reason"]) == ({"role": "assistant", "content": DONE}, "stop")
    assert replies[2]["object"] == "chat.completion"
    assert replies[2]["usage"] == {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}


async def test_aider_gets_search_replace_blocks_and_side_queries_get_text(
    llm: FakeLLM, http: aiohttp.ClientSession
) -> None:
    prompt = "Edit.\n@@fake-write a.py\nx = 1\n@@end\n@@fake-shell make\n@@fake-write docs/b.md\n# B\n@@end"
    system = {"role": "system", "content": "Describe each change with a *SEARCH/REPLACE block* per the examples."}
    body = {"model": "fake-model", "messages": [system, {"role": "user", "content": prompt}]}
    reply = json.loads((await post(http, f"{llm.url}/v1/chat/completions", body))[2])
    assert reply["choices"][0]["message"]["content"] == (
        "a.py\n```\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n```\n\n"
        "docs/b.md\n```\n<<<<<<< SEARCH\n=======\n# B\n>>>>>>> REPLACE\n```\n"
    )
    title = {"model": "fake-model", "messages": [{"role": "system", "content": "Write a title."}, body["messages"][1]]}
    reply = json.loads((await post(http, f"{llm.url}/v1/chat/completions", title))[2])
    assert reply["choices"][0]["message"]["content"] == DONE


# ======== OpenAI Responses (Codex) ========

EXEC_COMMAND = {"type": "function", "name": "exec_command", "parameters": schema("cmd", cmd="string", workdir="string")}


def codex_body(prompt: str, history: list[JSON] | None = None, tools: list[JSON] | None = None) -> JSON:
    def message(role: str, text: str) -> JSON:
        return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}

    return {
        "model": "fake-model",
        "instructions": "You are Codex.",
        "input": [
            message("developer", "<permissions instructions>sandbox</permissions instructions>"),
            message("user", "<environment_context>\n  <cwd>/work/codex</cwd>\n</environment_context>"),
            message("user", prompt),
            *(history or []),
        ],
        "tools": tools or [EXEC_COMMAND],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "store": False,
        "stream": True,
    }


async def test_responses_stream_tool_call_then_final_text(
    llm: FakeLLM, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    url = f"{llm.url}/v1/responses"
    status, content_type, text = await post(http, url, codex_body("Create hello.txt"))
    assert (status, content_type) == (200, "text/event-stream")
    events = sse(text)
    assert [name for name, _ in events] == [
        "response.created",
        "response.output_item.added",
        "response.output_item.done",
        "response.completed",
    ]
    assert [data["sequence_number"] for _, data in events] == [0, 1, 2, 3]
    assert events[1][1]["item"]["status"] == "in_progress"
    item = events[2][1]["item"]
    assert (item["type"], item["name"], item["call_id"][:5]) == ("function_call", "exec_command", "call_")
    command = json.loads(item["arguments"])["cmd"]
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    assert (tmp_path / "hello.txt").read_text() == HELLO
    assert events[3][1]["response"]["output"] == [item]

    output = {"type": "function_call_output", "call_id": item["call_id"], "output": "ok"}
    events = sse((await post(http, url, codex_body("Create hello.txt", [item, output])))[2])
    assert [name for name, _ in events][2] == "response.output_text.delta"
    assert events[2][1]["delta"] == DONE
    final = events[3][1]["item"]
    assert (final["type"], final["role"], final["content"][0]["type"]) == ("message", "assistant", "output_text")
    assert final["content"][0]["text"] == DONE
    response = events[4][1]["response"]
    assert (response["status"], response["usage"]) == (
        "completed",
        {
            "input_tokens": 120,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 150,
        },
    )


async def test_responses_freeform_apply_patch_beats_the_shell(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    tools = [EXEC_COMMAND, {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}}]
    prompt = "@@fake-write src/a.py\ndef f():\n    return 1\n@@end"
    events = sse((await post(http, f"{llm.url}/v1/responses", codex_body(prompt, tools=tools)))[2])
    item = events[2][1]["item"]
    assert (item["type"], item["name"]) == ("custom_tool_call", "apply_patch")
    assert item["input"] == "*** Begin Patch\n*** Add File: src/a.py\n+def f():\n+    return 1\n*** End Patch\n"


# ======== Gemini (Gemini CLI) ========


def gemini_body(prompt: str, history: list[JSON] | None = None) -> JSON:
    declarations = [
        {
            "name": "write_file",
            "parametersJsonSchema": schema("file_path", "content", file_path="string", content="string"),
        },
        {"name": "run_shell_command", "parametersJsonSchema": schema("command", command="string")},
    ]
    return {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "This is the Gemini CLI.\nI'm currently working in the directory: /work/gem"}],
            },
            {"role": "user", "parts": [{"text": prompt}]},
            *(history or []),
        ],
        "systemInstruction": {"role": "user", "parts": [{"text": "You are an interactive CLI agent."}]},
        "tools": [{"functionDeclarations": declarations}],
        "generationConfig": {"temperature": 0},
    }


async def test_gemini_stream_tool_call_then_final_text(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    url = f"{llm.url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    status, content_type, text = await post(http, url, gemini_body(TWO_STEPS))
    assert (status, content_type) == (200, "text/event-stream")
    [(name, chunk)] = sse(text)
    assert name is None
    [candidate] = chunk["candidates"]
    assert candidate["finishReason"] == "STOP"
    assert candidate["content"] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "write_file", "args": {"file_path": "/work/gem/hello.txt", "content": HELLO}}}
        ],
    }
    assert chunk["usageMetadata"] == {"promptTokenCount": 120, "candidatesTokenCount": 30, "totalTokenCount": 150}

    def round_trip(call: JSON) -> list[JSON]:
        response = {"functionResponse": {"name": call["name"], "response": {"output": "ok"}}}
        return [{"role": "model", "parts": [{"functionCall": call}]}, {"role": "user", "parts": [response]}]

    history = round_trip(candidate["content"]["parts"][0]["functionCall"])
    [(_, chunk)] = sse((await post(http, url, gemini_body(TWO_STEPS, history)))[2])
    shell = chunk["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert shell == {"name": "run_shell_command", "args": {"command": "printf 'shell ok\\n' > shell.txt"}}
    [(_, chunk)] = sse((await post(http, url, gemini_body(TWO_STEPS, history + round_trip(shell))))[2])
    assert chunk["candidates"][0]["content"]["parts"] == [{"text": DONE}]


async def test_gemini_generate_content_answers_json(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    side_query = {"contents": [{"role": "user", "parts": [{"text": "Is the model done?"}]}]}
    status, content_type, text = await post(http, f"{llm.url}/v1beta/models/flash:generateContent", side_query)
    reply = json.loads(text)
    assert (status, content_type) == (200, "application/json")
    assert reply["candidates"][0]["content"]["parts"] == [{"text": DONE}]
    assert reply["modelVersion"] == "flash"


# ======== directives and tool choice ========


def test_write_directive_keeps_multi_line_content_exactly() -> None:
    prompt = "Please:\n@@fake-write pkg/mod.py\ndef f():\n\n    return '@'\n\n@@end\nthanks"
    assert parse_script(prompt, DEFAULT_STEP).steps == (WriteStep("pkg/mod.py", "def f():\n\n    return '@'\n\n"),)


def test_directives_become_steps_in_prompt_order() -> None:
    prompt = (
        "@@fake-shell echo 1 > one.txt\n@@fake-write two.txt\n2\n@@end\n@@fake-shell  cat two.txt \n@@fake-sleep 1.5"
    )
    script = parse_script(prompt, DEFAULT_STEP)
    assert script.steps == (ShellStep("echo 1 > one.txt"), WriteStep("two.txt", "2\n"), ShellStep("cat two.txt"))
    assert script.sleep == 1.5


def test_whitespace_mangled_directives_still_parse() -> None:
    prompt = "wrapped by the CLI: @@ fake-write   out.txt  \r\nline\r\n  @@end @@fake-shell\tls -la"
    assert parse_script(prompt, DEFAULT_STEP).steps == (WriteStep("out.txt", "line\n"), ShellStep("ls -la"))


def test_a_quote_the_cli_wrapped_around_the_prompt_is_not_part_of_the_command() -> None:
    # OpenCode sends a multi-line prompt as "...": the last line's command gains an unbalanced closing quote.
    script = parse_script('"Do it.\n@@fake-shell printf \'ok\\n\' > "out file.txt""', DEFAULT_STEP)
    assert script.steps == (ShellStep("printf 'ok\\n' > \"out file.txt\""),)
    assert parse_script('@@fake-shell echo "balanced"', DEFAULT_STEP).steps == (ShellStep('echo "balanced"'),)


def test_prompt_without_steps_plays_the_default_script() -> None:
    script = parse_script("Just do something. @@fake-sleep 2", DEFAULT_STEP)
    assert (script.steps, script.sleep) == ((DEFAULT_STEP,), 2.0)


def test_write_through_the_shell_recreates_the_file_byte_for_byte(tmp_path: Path) -> None:
    content = 'it\'s $HOME and `x` \\n 100% "quoted"\n\ttab\n'
    subprocess.run(["bash", "-c", shell_command(WriteStep("deep/dir/f.txt", content))], cwd=tmp_path, check=True)
    assert (tmp_path / "deep" / "dir" / "f.txt").read_text() == content


def test_tool_choice_follows_the_offered_schemas() -> None:
    patch_tool = Tool("apply_patch", schema("input", input="string"))
    argv_shell = Tool("shell", schema("command", command="array", timeout_ms="integer"))
    step = WriteStep("a.txt", "a\n")
    assert plan_call(step, [argv_shell, patch_tool], None).arguments == {
        "input": "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch\n"
    }
    assert plan_call(ShellStep("ls"), [argv_shell, patch_tool], None).arguments == {"command": ["bash", "-lc", "ls"]}
    opencode_write = Tool("write", schema("filePath", "content", filePath="string", content="string"))
    assert plan_call(step, [argv_shell, opencode_write], "/w").arguments == {"filePath": "/w/a.txt", "content": "a\n"}


def test_working_directory_is_found_in_each_clis_phrasing() -> None:
    assert find_cwd({"system": "You are Claude.\n - Primary working directory: /a/b\n"}) == "/a/b"
    assert find_cwd({"contents": [{"parts": [{"text": "I'm currently working in the directory: /g."}]}]}) == "/g"
    assert find_cwd({"messages": [{"content": "<env>\n  Working directory: /oc\n</env>"}]}) == "/oc"
    assert find_cwd({"input": [{"content": [{"text": "<cwd>/codex dir</cwd>"}]}]}) == "/codex dir"
    assert find_cwd({"tools": [{"description": "working directory: /not/this"}], "messages": []}) is None


async def test_no_usable_tool_is_a_400_that_names_the_offered_tools(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    body = {"messages": [{"role": "user", "content": "go"}], "tools": [{"name": "Read", "input_schema": {}}]}
    status, _, text = await post(http, f"{llm.url}/v1/messages", body)
    error = json.loads(text)["error"]
    assert (status, error["type"]) == (400, "invalid_request_error")
    assert "no tool can play" in error["message"] and "tools offered: Read" in error["message"]


async def test_body_that_is_not_json_is_a_400(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    status, _, text = await post(http, f"{llm.url}/v1/chat/completions", "{not json")
    assert status == 400
    assert "request body must be a JSON object" in json.loads(text)["error"]["message"]


# ======== errors, sleep, usage, log, routes ========


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"),
    [
        (
            "/v1/messages",
            claude_body("@@fake-error 400"),
            400,
            {"type": "error", "error": {"type": "invalid_request_error"}},
        ),
        ("/v1/chat/completions", qwen_body("x @@fake-error 401"), 401, {"error": {"type": "authentication_error"}}),
        ("/v1/responses", codex_body("@@fake-error 500"), 500, {"error": {"type": "server_error"}}),
        ("/v1beta/models/m:streamGenerateContent", gemini_body("@@fake-error 429"), 429, {"error": {"code": 429}}),
    ],
)
async def test_fake_error_directive_answers_a_protocol_shaped_error(
    llm: FakeLLM, http: aiohttp.ClientSession, path: str, body: JSON, status: int, expected: JSON
) -> None:
    got_status, content_type, text = await post(http, llm.url + path, body)
    reply = json.loads(text)
    assert (got_status, content_type) == (status, "application/json")
    assert reply["error"]["message"] == f"fake LLM: injected HTTP {status}"
    for key, value in expected.items():
        assert reply[key] == value if not isinstance(value, dict) else reply[key].items() >= value.items()


async def test_error_status_option_fails_every_request(http: aiohttp.ClientSession) -> None:
    async with FakeLLM(error_status=503) as llm:
        status, _, text = await post(http, f"{llm.url}/v1beta/models/m:generateContent", gemini_body("hi"))
        assert (status, json.loads(text)["error"]["status"]) == (503, "UNAVAILABLE")
        async with http.get(f"{llm.url}/v1/models") as response:
            assert response.status == 503


async def test_fake_error_with_a_non_error_status_is_rejected(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    status, _, text = await post(http, f"{llm.url}/v1/messages", claude_body("@@fake-error 200"))
    assert status == 400
    assert "needs an HTTP error status 400-599, got 200" in json.loads(text)["error"]["message"]


async def test_fake_sleep_delays_the_answer(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    status, _, _ = await post(http, f"{llm.url}/v1/messages", claude_body("@@fake-sleep 0.3"))
    assert status == 200
    assert 0.3 <= time.monotonic() - started < 2


async def test_closing_the_server_ends_a_sleeping_request(http: aiohttp.ClientSession) -> None:
    llm = FakeLLM()
    await llm.start()
    request = asyncio.create_task(post(http, f"{llm.url}/v1/messages", claude_body("@@fake-sleep 60")))
    while not llm.requests:
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await llm.close()
    assert time.monotonic() - started < 3
    assert (await request)[0] == 200


async def test_usage_numbers_are_configurable_in_every_protocol(http: aiohttp.ClientSession) -> None:
    async with FakeLLM(input_tokens=7, output_tokens=3, final_text="All done.") as llm:
        claude = json.loads((await post(http, f"{llm.url}/v1/messages", claude_body("hi", stream=False)))[2])
        chat = json.loads((await post(http, f"{llm.url}/v1/chat/completions", {"messages": []}))[2])
        codex = sse((await post(http, f"{llm.url}/v1/responses", codex_body("hi", tools=[])))[2])[-1][1]
        gemini = json.loads((await post(http, f"{llm.url}/v1beta/models/m:generateContent", gemini_body("hi")))[2])
    assert (claude["usage"]["input_tokens"], claude["usage"]["output_tokens"]) == (7, 3)
    assert chat["usage"] == {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert chat["choices"][0]["message"]["content"] == "All done."
    assert (codex["response"]["usage"]["input_tokens"], codex["response"]["usage"]["total_tokens"]) == (7, 10)
    assert gemini["usageMetadata"]["totalTokenCount"] == 10


async def test_token_counting_routes(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    claude = json.loads((await post(http, f"{llm.url}/v1/messages/count_tokens?beta=true", claude_body("hi")))[2])
    gemini = json.loads((await post(http, f"{llm.url}/v1beta/models/m:countTokens", gemini_body("hi")))[2])
    assert (claude, gemini) == ({"input_tokens": 120}, {"totalTokens": 120})


async def test_requests_are_logged_without_secrets(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    log = tmp_path / "requests.jsonl"
    async with FakeLLM(log_path=log) as llm:
        headers = {"x-api-key": "sk-ant-secret", "Authorization": "Bearer sk-secret", "anthropic-version": "2023-06-01"}
        body = claude_body("hi")
        async with http.post(f"{llm.url}/v1/messages?beta=true", json=body, headers=headers) as response:
            assert response.status == 200
        [entry] = llm.requests
        assert (entry["method"], entry["path"], entry["query"]) == ("POST", "/v1/messages", {"beta": "true"})
        assert entry["body"] == body
        assert entry["headers"]["x-api-key"] == entry["headers"]["Authorization"] == "<redacted>"
        assert entry["headers"]["anthropic-version"] == "2023-06-01"
        assert [json.loads(line) for line in log.read_text().splitlines()] == [entry]
        assert "secret" not in log.read_text()
        llm.reset()
        assert llm.requests == []
        await post(http, f"{llm.url}/v1/chat/completions", {"messages": []})
    assert len(log.read_text().splitlines()) == 2


async def test_unknown_routes_get_a_logged_404(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    status, _, text = await post(http, f"{llm.url}/v1/embeddings", {"input": "x"})
    assert (status, json.loads(text)["error"]["message"]) == (404, "fake LLM: no route for POST /v1/embeddings")
    async with http.get(f"{llm.url}/v1/chat/completions") as response:
        assert response.status == 404
    logged = [(r["method"], r["path"]) for r in llm.requests]
    assert logged == [("POST", "/v1/embeddings"), ("GET", "/v1/chat/completions")]


async def test_model_list_with_or_without_v1(llm: FakeLLM, http: aiohttp.ClientSession) -> None:
    for path in ("/v1/models", "/models"):
        async with http.get(llm.url + path) as response:
            assert [m["id"] for m in (await response.json())["data"]] == ["fake-model"]


def test_bad_options_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="error_status must be an HTTP error status 400-599, got 302"):
        FakeLLM(error_status=302)
    with pytest.raises(ValueError, match="token counts must be >= 0"):
        FakeLLM(input_tokens=-1)
    with pytest.raises(RuntimeError, match="not running"):
        _ = FakeLLM().url


# ======== background thread and program ========


def post_sync(url: str, body: JSON) -> tuple[int, JSON]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_fixture_serves_from_a_background_thread(fake_llm: ThreadedFakeLLM) -> None:
    status, reply = post_sync(f"{fake_llm.url}/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    assert (status, reply["choices"][0]["message"]["content"]) == (200, DONE)
    assert [r["path"] for r in fake_llm.requests] == ["/v1/chat/completions"]
    fake_llm.reset()
    assert fake_llm.requests == []


def test_run_in_thread_takes_options_and_stops() -> None:
    with run_in_thread(error_status=401) as llm:
        url = llm.url
        status, reply = post_sync(f"{url}/v1/messages", claude_body("hi"))
        assert (status, reply["error"]["type"]) == (401, "authentication_error")
    llm.stop()  # stopping twice is harmless
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/v1/models", timeout=2)


def test_program_writes_its_port_file_and_serves(tmp_path: Path) -> None:
    port_file, log = tmp_path / "port", tmp_path / "log.jsonl"
    argv = [sys.executable, str(FAKE_LLM), "--port", "0", "--port-file", str(port_file), "--log", str(log)]
    argv += ["--input-tokens", "11", "--output-tokens", "5", "--final-text", "Finished.", "--path", "x.txt"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        status, reply = post_sync(f"{url}/v1/messages", claude_body("go", stream=False))
        assert (status, reply["content"][0]["input"]["file_path"]) == (200, "/work/claude-repo/x.txt")
        assert reply["usage"]["input_tokens"] == 11 and reply["usage"]["output_tokens"] == 5
        status, reply = post_sync(f"{url}/v1/chat/completions", {"messages": []})
        assert reply["choices"][0]["message"]["content"] == "Finished."
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert stdout == f"fake LLM listening on {url}\n"
    logged = [json.loads(line)["path"] for line in log.read_text().splitlines()]
    assert logged == ["/v1/messages", "/v1/chat/completions"]


def test_program_rejects_bad_options() -> None:
    argv = [sys.executable, str(FAKE_LLM), "--error-status", "200"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 2
    assert "error_status must be an HTTP error status 400-599, got 200" in done.stderr
