"""Test doubles that let the simulation run the broker's real code without an event loop.

- ``FakeDB``: the two partition column families of ``NodeDB`` as sorted in-memory
  maps. It is the broker's "disk": it survives a simulated crash, and a restart
  reopens ``PartitionLog`` from it (HW checkpoint and epoch cache reloaded).
- ``SyncCommitter``: a ``GroupCommitter`` stand-in that applies each staged write at
  once and hands back a future that is already done, so every ``PartitionLog`` write
  is durable when ``submit`` returns and no coroutine ever has to wait.
- ``run_sync``: drive a coroutine that never really suspends to completion.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import structlog

from raftlog.storage.node_db import CF

T = TypeVar("T")

#: A structlog logger that drops everything below CRITICAL (the sim keeps its own trace).
QUIET_LOGGER: Any = structlog.wrap_logger(
    None, wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL)
)


class CoroutineBlocked(RuntimeError):
    """The driven code awaited something that is not ready: the sim cannot model it."""


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion; it may yield bare ``None`` (``asyncio.sleep(0)``)
    but must never wait on a future."""
    try:
        while True:
            yielded = coro.send(None)
            if yielded is not None:
                coro.close()
                raise CoroutineBlocked(f"coroutine waited on {yielded!r}")
    except StopIteration as stop:
        result: T = stop.value
        return result


class FakeColumnFamily:
    """A sorted key-value map with NodeDB's ColumnFamilyView reads."""

    def __init__(self) -> None:
        self._keys: list[bytes] = []
        self._data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def _range(self, lo: bytes, hi: bytes | None) -> tuple[int, int]:
        i = bisect.bisect_left(self._keys, lo)
        j = len(self._keys) if hi is None else bisect.bisect_left(self._keys, hi)
        return i, j

    def items(self, lo: bytes, hi: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        i, j = self._range(lo, hi)
        for key in self._keys[i:j]:  # a copy: callers may write while iterating
            yield key, self._data[key]

    def first_key(self, lo: bytes = b"", hi: bytes | None = None) -> bytes | None:
        i, j = self._range(lo, hi)
        return self._keys[i] if i < j else None

    def last_key(self, lo: bytes = b"", hi: bytes | None = None) -> bytes | None:
        i, j = self._range(lo, hi)
        return self._keys[j - 1] if i < j else None

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self._data:
            bisect.insort(self._keys, key)
        self._data[key] = value

    def delete(self, key: bytes) -> None:
        if self._data.pop(key, None) is not None:
            self._keys.remove(key)

    def delete_range(self, lo: bytes, hi: bytes) -> None:
        i, j = self._range(lo, hi)
        for key in self._keys[i:j]:
            del self._data[key]
        del self._keys[i:j]

    def __len__(self) -> int:
        return len(self._keys)


class FakeDB:
    """What ``PartitionLog`` uses of ``NodeDB``."""

    def __init__(self) -> None:
        self.closed = False
        self.cfs = {CF.PARTITION_BATCHES: FakeColumnFamily(), CF.PARTITION_STATE: FakeColumnFamily()}

    @property
    def partition_batches(self) -> FakeColumnFamily:
        return self.cfs[CF.PARTITION_BATCHES]

    @property
    def partition_state(self) -> FakeColumnFamily:
        return self.cfs[CF.PARTITION_STATE]

    @property
    def path(self) -> str:
        return "<memory>"


class FakeWriteBatch:
    """Records ``put`` / ``delete`` / ``delete_range`` and applies them in order."""

    def __init__(self) -> None:
        self.ops: list[Callable[[FakeDB], None]] = []

    def put(self, cf: CF, key: bytes, value: bytes) -> None:
        self.ops.append(lambda db: db.cfs[cf].put(key, value))

    def delete(self, cf: CF, key: bytes) -> None:
        self.ops.append(lambda db: db.cfs[cf].delete(key))

    def delete_range(self, cf: CF, lo: bytes, hi: bytes) -> None:
        self.ops.append(lambda db: db.cfs[cf].delete_range(lo, hi))

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.ops.append(lambda db: hook())


class SyncCommitter:
    """``GroupCommitter.submit`` that is durable on return (one write, one 'fsync')."""

    def __init__(self, db: FakeDB, loop: asyncio.AbstractEventLoop) -> None:
        self.db = db
        self.loop = loop
        self.writes = 0

    def submit(self, stage: Callable[[Any], None], on_done: Callable[[BaseException | None], None] | None = None
               ) -> asyncio.Future[None]:
        batch = FakeWriteBatch()
        stage(batch)
        for op in batch.ops:
            op(self.db)
        self.writes += 1
        if on_done is not None:
            on_done(None)
        future: asyncio.Future[None] = self.loop.create_future()
        future.set_result(None)
        return future
