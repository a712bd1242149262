"""Alembic environment: runs only online, on the connection open_store hands over.

open_store has already begun (and locked) the transaction, so alembic joins it instead of opening its own.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("forgebot migrations run through forgebot.store.open_store, not the alembic CLI")
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
