"""Durable state: every engine state change is written here before it is announced."""

from forgebot.store.base import NotFound, Store, StoreError
from forgebot.store.sql import SqlStore, open_store

__all__ = ["NotFound", "SqlStore", "Store", "StoreError", "open_store"]
