"""Initial schema: tasks and attempts.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("repo", sa.Text, nullable=False),
        sa.Column("base_branch", sa.Text, nullable=False),
        sa.Column("base_sha", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("quality_threshold", sa.Double, nullable=False),
        sa.Column("checks", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("external_ref", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("task_id", sa.Integer, nullable=False),
        sa.Column("repo", sa.Text, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("branch", sa.Text, nullable=False),
        sa.Column("worktree", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("started_at", sa.Double, nullable=True),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("session_id", sa.Text, nullable=True),
        sa.Column("final_message", sa.Text, nullable=True),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("insertions", sa.Integer, nullable=False),
        sa.Column("deletions", sa.Integer, nullable=False),
        sa.Column("checks", sa.Text, nullable=False),
        sa.Column("tokens_in", sa.BigInteger, nullable=True),
        sa.Column("tokens_out", sa.BigInteger, nullable=True),
        sa.Column("cache_read", sa.BigInteger, nullable=True),
        sa.Column("cache_write", sa.BigInteger, nullable=True),
        sa.Column("cost_usd", sa.Double, nullable=True),
        sa.Column("turns", sa.Integer, nullable=True),
        sa.Column("commit_sha", sa.String(64), nullable=True),
        sa.Column("log_path", sa.Text, nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("owner", sa.Text, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("progress", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_attempts_task_id_tasks", ondelete="CASCADE"),
        sa.UniqueConstraint("repo", "branch", name="uq_attempts_repo_branch"),
    )
    op.create_index("ix_attempts_task_id", "attempts", ["task_id"])
    op.create_index("ix_attempts_status", "attempts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_attempts_status", table_name="attempts")
    op.drop_index("ix_attempts_task_id", table_name="attempts")
    op.drop_table("attempts")
    op.drop_table("tasks")
