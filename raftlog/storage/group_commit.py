"""GroupCommitter: many stores' changes in one NodeDB WriteBatch, synced once (docs/architecture.md §6).

Every *stage* function submitted during one event-loop turn — and every one
submitted while the previous write is still being synced — goes into ONE
``WriteBatch`` that is written (and, with the DB's default ``sync=True``, fsync'ed)
ONCE, in an executor thread, so the event loop never blocks on a sync::

    committer = GroupCommitter(db)
    await committer.commit(lambda batch: batch.put(CF.PARTITION_STATE, k, v))

Ordering and callbacks
    Stages run on the event loop, in submission order, when the batch is built
    (not when they are submitted). Writes are strictly sequential: at most one
    write is in flight per committer, so a later stage is durable only after every
    earlier one. After a successful write, every ``on_done(None)`` hook given to
    :meth:`submit` runs on the event loop, in submission order, *before* any waiter
    is resumed; then every waiter's future completes. ``WriteBatch.after_commit``
    hooks still work but run in the executor thread (inside ``NodeDB.write``):
    keep event-loop state in ``on_done`` hooks instead.

Errors
    A stage that raises fails only its own caller; the batch is rebuilt from the
    other stages (so a stage must only add to the batch it is given, and may be
    called more than once). A failed write fails every waiter of that batch with
    the error and makes the committer *fail-stop*: every later commit raises
    :class:`DataDirIOError` too, as RocksDB itself refuses writes after a failed
    sync and nothing staged afterwards may assume the lost batch is on disk (the
    node should stop).

Cancellation
    Cancelling a task awaiting :meth:`commit` does not withdraw its stage: the
    change is written with its batch anyway (hooks still run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from raftlog.storage.errors import DataDirIOError
from raftlog.storage.node_db import NodeDB, WriteBatch

Stage = Callable[[WriteBatch], None]
DoneHook = Callable[[BaseException | None], None]

#: committer per NodeDB (keyed by id: an entry lives only while its committer,
#: which holds the NodeDB, is alive, so an id is never reused under it).
_PER_DB: Final[weakref.WeakValueDictionary[int, GroupCommitter]] = weakref.WeakValueDictionary()


@dataclass(slots=True)
class _Waiter:
    stage: Stage
    on_done: DoneHook | None
    future: asyncio.Future[None]
    error: BaseException | None = field(default=None)


@dataclass(frozen=True, slots=True)
class CommitStats:
    """Counters since the committer was made (for metrics and benchmarks)."""

    writes: int  # db.write calls (== syncs with a sync DB)
    stages: int  # stage functions written (successfully or not)


class GroupCommitter:
    """Group commit on one NodeDB. Use from one event loop at a time."""

    def __init__(self, db: NodeDB, executor: concurrent.futures.Executor | None = None) -> None:
        """``executor`` runs the blocking ``db.write``; None: the running loop's
        default executor (at most one write per committer is in flight anyway)."""
        self._db = db
        self._executor = executor
        self._queue: list[_Waiter] = []
        self._flusher: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._writes = 0
        self._stages = 0

    @classmethod
    def for_db(cls, db: NodeDB) -> GroupCommitter:
        """The shared default committer of ``db`` (made on first use, default executor)."""
        committer = _PER_DB.get(id(db))
        if committer is None or committer._db is not db:
            committer = cls(db)
            _PER_DB[id(db)] = committer
        return committer

    @property
    def db(self) -> NodeDB:
        return self._db

    @property
    def failed(self) -> BaseException | None:
        """The write error that made this committer fail-stop, or None."""
        return self._failed

    @property
    def stats(self) -> CommitStats:
        return CommitStats(self._writes, self._stages)

    async def commit(self, stage: Stage) -> None:
        """Stage into the next group write and wait until that write is durable.

        Raises what the stage raised (nothing of it is written), or the write's
        error (nothing of the whole batch may be assumed durable)."""
        await asyncio.shield(self.submit(stage))

    def submit(self, stage: Stage, on_done: DoneHook | None = None) -> asyncio.Future[None]:
        """Queue ``stage`` for the next group write (must be called on the loop).

        ``on_done(None)`` runs on the loop right after the write is durable, before
        any waiter resumes, in submission order; ``on_done(exc)`` when it failed.
        The returned future completes after the hooks. Await it through
        ``asyncio.shield`` if the caller may be cancelled (as :meth:`commit` does)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        # Even on a fail-stopped committer the hooks run from the flusher, never
        # inside submit(), so a caller can finish its bookkeeping first.
        self._queue.append(_Waiter(stage, on_done, future))
        if self._flusher is None or self._flusher.get_loop() is not loop:
            # Starts on the next loop iteration: everything submitted during this
            # turn is in the queue by then.
            self._flusher = loop.create_task(self._flush())
        return future

    def _fail_stop_error(self) -> DataDirIOError:
        err = DataDirIOError(f"an earlier group commit to {self._db.path} failed: {self._failed}")
        err.__cause__ = self._failed
        return err

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                waiters, self._queue = self._queue, []
                if self._failed is not None:
                    self._finish(waiters, self._fail_stop_error())
                    continue
                try:
                    batch, staged = self._build(waiters)
                except Exception as exc:  # noqa: BLE001 - e.g. the NodeDB was closed
                    self._finish([w for w in waiters if not w.future.done()], exc)
                    continue
                if not staged:
                    continue
                self._writes += 1
                self._stages += len(staged)
                write = loop.run_in_executor(self._executor, self._write, batch)
                try:
                    await asyncio.shield(write)
                except asyncio.CancelledError:
                    # The loop is going away; the write may still land. Unknown
                    # durability: fail-stop.
                    self._failed = DataDirIOError("group commit cancelled while writing")
                    self._finish(staged, self._failed)
                    raise
                except BaseException as exc:  # noqa: BLE001 - every waiter gets it
                    self._failed = exc
                    self._finish(staged, exc)
                else:
                    self._finish(staged, None)
        finally:
            self._flusher = None
            if self._queue:  # cancelled with stages queued: fail them too
                waiters, self._queue = self._queue, []
                self._finish(waiters, self._failed or DataDirIOError("group commit stopped"))

    def _write(self, batch: WriteBatch) -> None:
        self._db.write(batch)  # looked up per call: tests may wrap db.write

    def _build(self, waiters: list[_Waiter]) -> tuple[WriteBatch, list[_Waiter]]:
        """One batch of every stage that does not raise (rebuilt when one does)."""
        live = waiters
        while True:
            batch = self._db.batch()
            bad: _Waiter | None = None
            for waiter in live:
                try:
                    waiter.stage(batch)
                except Exception as exc:  # noqa: BLE001 - that caller gets it
                    waiter.error = exc
                    bad = waiter
                    break
            if bad is None:
                return batch, live
            self._finish([bad], bad.error)
            live = [w for w in live if w is not bad]

    @staticmethod
    def _finish(waiters: list[_Waiter], error: BaseException | None) -> None:
        loop = asyncio.get_running_loop()
        for waiter in waiters:
            if waiter.on_done is not None:
                try:
                    waiter.on_done(error)
                except Exception as exc:  # noqa: BLE001 - a broken hook must not stop the rest
                    loop.call_exception_handler(
                        {"message": "group commit on_done hook failed", "exception": exc}
                    )
        for waiter in waiters:
            if waiter.future.done():
                continue
            if error is None:
                waiter.future.set_result(None)
            else:
                waiter.future.set_exception(error)
