"""Table definitions: the single source of table and column names.

Migrations under migrations/versions spell the same schema out explicitly; a test checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Deterministic constraint names, so migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("repo", Text, nullable=False),
    Column("base_branch", Text, nullable=False),
    Column("base_sha", String(64), nullable=False),
    Column("strategy", String(16), nullable=False),
    Column("quality_threshold", Double, nullable=False),
    Column("checks", Text, nullable=False),  # JSON list of CheckSpec
    Column("created_at", Double, nullable=False),
    Column("source", String(32), nullable=False),
    Column("external_ref", Text),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True),
    # Copied from the task so the database itself can keep branch names unique per repository.
    Column("repo", Text, nullable=False),
    Column("profile", Text, nullable=False),  # JSON AgentProfile
    Column("branch", Text, nullable=False),
    Column("worktree", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("created_at", Double, nullable=False),
    Column("started_at", Double),
    Column("finished_at", Double),
    Column("exit_code", Integer),
    Column("error", Text),
    Column("session_id", Text),
    Column("final_message", Text),
    # DiffStats and Usage as plain columns so reports can sum them in SQL.
    Column("files", Integer, nullable=False),
    Column("insertions", Integer, nullable=False),
    Column("deletions", Integer, nullable=False),
    Column("checks", Text, nullable=False),  # JSON list of CheckResult
    Column("tokens_in", BigInteger),
    Column("tokens_out", BigInteger),
    Column("cache_read", BigInteger),
    Column("cache_write", BigInteger),
    Column("cost_usd", Double),
    Column("turns", Integer),
    Column("commit_sha", String(64)),
    Column("log_path", Text),
    Column("pid", Integer),
    Column("owner", Text),
    Column("cancel_requested", Boolean, nullable=False),
    Column("progress", Text, nullable=False),
    Column("followup", Text),  # a follow-up prompt waiting to run in this attempt's session (0002)
    UniqueConstraint("repo", "branch"),
)

# -- GitHub bot state (0003) -----------------------------------------------------------------------------------

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(100), primary_key=True),  # X-GitHub-Delivery; a redelivery carries the same id
    Column("event", String(64), nullable=False),
    Column("action", String(64)),
    Column("repo", Text),
    Column("status", String(16), nullable=False, index=True),  # pending | done | failed
    Column("payload", Text, nullable=False),  # kept until handled, so a restart can finish the work
    Column("received_at", Double, nullable=False),
    Column("finished_at", Double),
    Column("error", Text),
    Column("tries", Integer, nullable=False),
)

issue_tasks = Table(
    "issue_tasks",
    metadata,
    Column("task_id", Integer, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("repo", Text, nullable=False),  # owner/name
    Column("issue", Integer, nullable=False, index=True),
    Column("installation_id", BigInteger),
    Column("requester", Text, nullable=False),
    Column("delivery", String(100), unique=True),  # the delivery that created the task: a resumed one skips it
    Column("progress_comment_id", BigInteger),
    Column("pr_number", Integer),
    Column("pr_state", String(16)),  # open | merged | closed
    Column("cleaned_up", Boolean, nullable=False),
    Column("created_at", Double, nullable=False),
)

# -- REST API tokens (0004) --------------------------------------------------------------------------------------

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the secret; never the secret
    Column("repos", Text, nullable=False),  # JSON list of globs; empty = every repository
    Column("created_at", Double, nullable=False),
    Column("last_used_at", Double),
    Column("revoked", Boolean, nullable=False),
)
