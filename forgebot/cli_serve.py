"""`forgebot serve`: the GitHub webhook daemon."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from forgebot.config import load_settings
from forgebot.daemon import build, serve
from forgebot.github.client import PyGithubClient
from forgebot.github.settings import BotSettings, bot_settings


def github_client(behaviour: BotSettings) -> PyGithubClient:
    github = behaviour.github
    if github.app_id is not None and github.private_key_file:
        key = Path(github.private_key_file).read_text(encoding="utf-8")
        return PyGithubClient(
            api_url=github.api_url, app_id=github.app_id, private_key=key, write_interval=github.write_interval
        )
    return PyGithubClient(api_url=github.api_url, token=github.token, write_interval=github.write_interval)


async def run_serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, os.environ)
    behaviour = bot_settings(settings, os.environ)
    behaviour.require_runnable()
    daemon = build(settings, behaviour, github_client(behaviour), environ=os.environ)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host = args.host or behaviour.server.host
    port = args.port if args.port is not None else behaviour.server.port
    await serve(daemon, host, port, stop)
    return 0


def add_parser(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser("serve", help="run the GitHub webhook daemon")
    # Also accepted after `serve` (`forgebot serve --config forgebot.yml`); SUPPRESS keeps a global one.
    parser.add_argument("--config", default=argparse.SUPPRESS, help="server config file (YAML)")
    parser.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: server.port, 8080)")
