"""`forgebot tokens create|list|revoke`: the REST API's tokens, in the daemon's store."""

from __future__ import annotations

import argparse
import os
import time

from rich.console import Console
from rich.table import Table

from forgebot.api.tokens import hash_secret, new_secret
from forgebot.config import load_settings
from forgebot.daemon import daemon_store_url
from forgebot.store import open_store
from forgebot.store.tokens import TokenStore


def run_tokens(args: argparse.Namespace, out: Console) -> int:
    settings = load_settings(args.config, os.environ)
    store = open_store(daemon_store_url(settings))
    try:
        tokens = store.token_store()
        if args.cmd == "create":
            return _create(tokens, args, out)
        if args.cmd == "revoke":
            token = tokens.revoke(args.name)
            out.print(f"Token {token.name!r} revoked; requests with it now get 401.")
            return 0
        return _list(tokens, out)
    finally:
        store.close()


def _create(tokens: TokenStore, args: argparse.Namespace, out: Console) -> int:
    secret = new_secret()
    token = tokens.create(name=args.name, token_hash=hash_secret(secret), repos=args.repo or [], now=time.time())
    scope = ", ".join(token.repos) if token.repos else "every repository"
    out.print(f"Token {token.name!r} created for {scope}. Keep it now; it is not shown again:")
    print(secret, flush=True)  # plain print: no wrapping or markup around the secret
    return 0


def _list(tokens: TokenStore, out: Console) -> int:
    rows = tokens.list()
    if not rows:
        out.print("No API tokens yet: forgebot tokens create NAME")
        return 0
    table = Table(title="API tokens", title_justify="left")
    for column in ("name", "repositories", "created", "last used", "state"):
        table.add_column(column)
    for token in rows:
        table.add_row(
            token.name,
            ", ".join(token.repos) or "all",
            _when(token.created_at),
            _when(token.last_used_at),
            "revoked" if token.revoked else "active",
        )
    out.print(table)
    return 0


def _when(stamp: float | None) -> str:
    return "never" if stamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def add_parsers(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tokens = groups.add_parser("tokens", help="REST API tokens").add_subparsers(dest="cmd", required=True)
    create = tokens.add_parser("create", help="create a token (printed once, stored hashed)")
    create.add_argument("name")
    create.add_argument(
        "--repo", action="append", metavar="GLOB", help="limit to repositories (path or owner/name glob; repeat)"
    )
    tokens.add_parser("list", help="list tokens (never their secrets)")
    revoke = tokens.add_parser("revoke", help="revoke a token")
    revoke.add_argument("name")
