"""Delivery bookkeeping off the event loop, in batches, one writer at a time (group commit).

Every delivery is written twice (claimed before the acknowledgement, finished after its handlers). One thread per
write made concurrent `BEGIN IMMEDIATE`s wait for each other inside SQLite's busy handler, which sleeps: about 700
deliveries/s and p99 spikes of tens of ms (bench/webhook_ingress.py). Here the writes that arrive while one batch is
being committed go together in the next transaction, so a burst costs a few commits, and a lone delivery is
written at once (no waiting for company).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from forgebot.store.bot import BotStore, Claim, Finish

BATCH_LIMIT = 500  # rows per transaction (SQLite allows 32,766 parameters per statement)


class DeliveryBook:
    def __init__(self, store: BotStore) -> None:
        self._store = store
        self._claims: list[tuple[Claim, asyncio.Future[bool]]] = []
        self._finishes: list[tuple[Finish, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def claim(self, claim: Claim) -> bool:
        """True when the delivery is new (or failed before) and must be handled; recorded when this returns."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._claims.append((claim, future))
        self._kick()
        return await asyncio.shield(future)  # a cancelled caller does not take the batch's answer with it

    async def finish(self, finish: Finish) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finishes.append((finish, future))
        self._kick()
        await asyncio.shield(future)

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="delivery-book")

    async def _write(self) -> None:
        while self._claims or self._finishes:
            claims, self._claims = self._claims[:BATCH_LIMIT], self._claims[BATCH_LIMIT:]
            finishes, self._finishes = self._finishes[:BATCH_LIMIT], self._finishes[BATCH_LIMIT:]
            try:
                answers = await asyncio.to_thread(
                    self._store.record_deliveries, [c for c, _ in claims], [f for f, _ in finishes]
                )
            except BaseException as error:
                _fail([f for _, f in claims], error)
                _fail([f for _, f in finishes], error)
                if not isinstance(error, Exception):
                    _fail([f for _, f in self._claims], error)
                    _fail([f for _, f in self._finishes], error)
                    self._claims, self._finishes = [], []
                    raise
                continue
            for (_, future), answer in zip(claims, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
            for _, done in finishes:
                if not done.done():
                    done.set_result(None)


def _fail(futures: Sequence[asyncio.Future[bool]] | Sequence[asyncio.Future[None]], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            if isinstance(error, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(error)
