"""The future a ``send`` returns, and the per-batch result behind it.

Kafka's producer returns one future per record, resolved when the batch the record
went into is acknowledged (kafka-python's ``FutureRecordMetadata``). Records are
sent by the thousand, so the per-record object is small (slots, no lock, no event):
the batch owns the one :class:`BatchResult` that is waited on. A record future works
from any thread (``result(timeout)``, ``add_done_callback``) and can be awaited from
an event loop (``await future``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Generator
from typing import Any


from raftlog.client.logs import get_logger
from raftlog.client.errors import KafkaException, KafkaTimeoutError
from raftlog.client.types import RecordMetadata

logger = get_logger("raftlog.client")

DeliveryCallback = Callable[[KafkaException | None, RecordMetadata | None], Any]


class BatchResult:
    """Completion of one produce batch: a base offset or an error, set once."""

    __slots__ = ("_lock", "_event", "_waiters", "done", "base_offset", "error", "topic", "partition",
                 "record_offsets", "record_errors")

    def __init__(self, topic: str, partition: int) -> None:
        self._lock = threading.Lock()
        self._event: threading.Event | None = None
        self._waiters: list[Callable[[], None]] = []
        self.done = False
        self.base_offset = -1
        self.error: KafkaException | None = None
        self.topic = topic
        self.partition = partition
        # Set when the batch was split (RECORD_TOO_LARGE): each record's own outcome.
        self.record_offsets: list[int] | None = None
        self.record_errors: list[KafkaException | None] | None = None

    def complete(self, base_offset: int, error: KafkaException | None,
                 per_record: tuple[list[int], list[KafkaException | None]] | None = None) -> None:
        """Resolve (first call wins) and run the waiters. ``per_record`` gives each
        record's offset and error instead (a batch that was split and sent in parts)."""
        with self._lock:
            if self.done:
                return
            self.base_offset = base_offset
            self.error = error
            if per_record is not None:
                self.record_offsets, self.record_errors = per_record
            self.done = True
            waiters, self._waiters = self._waiters, []
            event = self._event
        if event is not None:
            event.set()
        for waiter in waiters:
            try:
                waiter()
            except Exception:  # noqa: BLE001 - a user's callback never breaks the sender
                logger.exception("delivery callback raised")

    def add_waiter(self, waiter: Callable[[], None]) -> None:
        """Run ``waiter()`` on completion (at once, in this thread, when already done)."""
        with self._lock:
            if not self.done:
                self._waiters.append(waiter)
                return
        waiter()

    def wait(self, timeout_s: float | None) -> bool:
        """Block until done or ``timeout_s``; True when done."""
        if self.done:
            return True
        with self._lock:
            if self.done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout_s)

    async def wait_async(self) -> None:
        """Wait from an event loop (any loop, any thread completing it)."""
        if self.done:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        def waiter() -> None:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                wake()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(wake)

        self.add_waiter(waiter)
        await future


class FutureRecordMetadata:
    """The pending outcome of one ``send``: a :class:`RecordMetadata` or a :class:`KafkaException`.

    ``result(timeout)``/``get(timeout)`` block; ``await future`` waits from asyncio;
    ``add_done_callback(fn)`` runs ``fn(future)`` on completion (in the producer's
    I/O thread — keep it short); ``add_callback``/``add_errback`` as kafka-python.
    """

    __slots__ = ("batch", "index", "topic", "timestamp", "key_size", "value_size")

    def __init__(self, batch: BatchResult, index: int, topic: str, timestamp: int, key_size: int,
                 value_size: int) -> None:
        self.batch = batch
        self.index = index
        self.topic = topic
        self.timestamp = timestamp
        self.key_size = key_size
        self.value_size = value_size

    # -- state
    def done(self) -> bool:
        """True once delivered or failed."""
        return self.batch.done

    def succeeded(self) -> bool:
        """True once delivered."""
        return self.batch.done and self._error() is None

    def failed(self) -> bool:
        """True once failed."""
        return self.batch.done and self._error() is not None

    def _error(self) -> KafkaException | None:
        batch = self.batch
        if batch.record_errors is not None:
            return batch.record_errors[self.index]
        return batch.error

    def cancel(self) -> bool:
        """A record handed to the producer cannot be cancelled: always False."""
        return False

    def cancelled(self) -> bool:
        """Always False (see :meth:`cancel`)."""
        return False

    def running(self) -> bool:
        """True until done."""
        return not self.batch.done

    # -- outcome
    def _metadata(self) -> RecordMetadata:
        batch = self.batch
        if batch.record_offsets is not None:
            offset = batch.record_offsets[self.index]
        else:
            offset = batch.base_offset + self.index if batch.base_offset >= 0 else -1
        return RecordMetadata(batch.topic, batch.partition, offset, self.timestamp, self.key_size, self.value_size)

    @property
    def value(self) -> RecordMetadata | None:
        """The metadata once delivered, else None (kafka-python)."""
        return self._metadata() if self.succeeded() else None

    def exception(self, timeout: float | None = None) -> KafkaException | None:
        """The error (None when delivered), waiting up to ``timeout`` seconds."""
        if not self.batch.wait(timeout):
            raise KafkaTimeoutError(f"record for {self.topic} not acknowledged within {timeout}s (still pending)")
        return self._error()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """The :class:`RecordMetadata`, waiting up to ``timeout`` seconds; raises the
        delivery error, or KafkaTimeoutError when still pending at the timeout."""
        error = self.exception(timeout)
        if error is not None:
            raise error
        return self._metadata()

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """kafka-python's name for :meth:`result`."""
        return self.result(timeout)

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        yield from self.batch.wait_async().__await__()
        return self.result(0)

    # -- callbacks
    def add_done_callback(self, fn: Callable[[FutureRecordMetadata], Any]) -> None:
        """Run ``fn(self)`` when done (at once when already done)."""
        self.batch.add_waiter(lambda: fn(self))

    def add_delivery_callback(self, fn: DeliveryCallback) -> None:
        """Run ``fn(err, metadata)`` when done — confluent-kafka's ``on_delivery`` shape."""

        def call() -> None:
            error = self._error()
            fn(error, None if error is not None else self._metadata())

        self.batch.add_waiter(call)

    def add_callback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FutureRecordMetadata:
        """kafka-python: ``fn(*args, metadata, **kwargs)`` on success."""

        def call() -> None:
            if self._error() is None:
                fn(*args, self._metadata(), **kwargs)

        self.batch.add_waiter(call)
        return self

    def add_errback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FutureRecordMetadata:
        """kafka-python: ``fn(*args, exception, **kwargs)`` on failure."""

        def call() -> None:
            error = self._error()
            if error is not None:
                fn(*args, error, **kwargs)

        self.batch.add_waiter(call)
        return self

    def __repr__(self) -> str:
        state = "pending" if not self.batch.done else ("error" if self._error() else "done")
        return f"<FutureRecordMetadata {self.topic}-{self.batch.partition} {state}>"
