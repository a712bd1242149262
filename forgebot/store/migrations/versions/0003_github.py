"""The GitHub bot's state: webhook deliveries and which task belongs to which issue.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64)),
        sa.Column("repo", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double),
        sa.Column("error", sa.Text),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_status", "deliveries", ["status"])
    op.create_table(
        "issue_tasks",
        sa.Column("task_id", sa.Integer, nullable=False),
        sa.Column("repo", sa.Text, nullable=False),
        sa.Column("issue", sa.Integer, nullable=False),
        sa.Column("installation_id", sa.BigInteger),
        sa.Column("requester", sa.Text, nullable=False),
        sa.Column("delivery", sa.String(100)),
        sa.Column("progress_comment_id", sa.BigInteger),
        sa.Column("pr_number", sa.Integer),
        sa.Column("pr_state", sa.String(16)),
        sa.Column("cleaned_up", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_issue_tasks"),
        sa.UniqueConstraint("delivery", name="uq_issue_tasks_delivery"),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], name="fk_issue_tasks_task_id_tasks", ondelete="CASCADE"),
    )
    op.create_index("ix_issue_tasks_issue", "issue_tasks", ["issue"])


def downgrade() -> None:
    op.drop_index("ix_issue_tasks_issue", "issue_tasks")
    op.drop_table("issue_tasks")
    op.drop_index("ix_deliveries_status", "deliveries")
    op.drop_table("deliveries")
