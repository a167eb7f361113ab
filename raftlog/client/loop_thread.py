"""An event loop in a daemon thread: how the blocking clients run the asyncio core.

The SDK's logic is asyncio-native (``raftlog.aio``); ``Producer``, ``Consumer`` and
``AdminClient`` submit coroutines to one :class:`LoopThread`, so the blocking and the
asyncio clients run the very same code. All blocking clients of a process share
one loop thread (:meth:`LoopThread.shared`), which is never closed: grpc.aio binds
its completion queue to every loop that used it and reports late events to a closed
loop as errors, and one I/O thread for every client is also cheaper.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from raftlog.client.errors import IllegalStateError, KafkaTimeoutError

T = TypeVar("T")


class LoopThread:
    """An event loop running forever in a daemon thread until :meth:`stop`."""

    _shared: LoopThread | None = None
    _shared_pid = -1
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> LoopThread:
        """The process's loop thread for blocking clients (a new one after a fork)."""
        with cls._shared_lock:
            current = cls._shared
            if current is None or cls._shared_pid != os.getpid() or not current.thread.is_alive():
                current = cls._shared = LoopThread("raftlog-client-io")
                cls._shared_pid = os.getpid()
            return current

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def in_loop_thread(self) -> bool:
        """True when called from the loop's own thread (e.g. inside a delivery callback)."""
        return threading.current_thread() is self.thread

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None, what: str = "operation") -> T:
        """Run ``coro`` on the loop and wait for its result (its exception is raised here).
        KafkaTimeoutError (and the coroutine cancelled) after ``timeout_s``."""
        if self.in_loop_thread():
            coro.close()
            raise IllegalStateError(
                f"{what} blocks, and cannot be called from the client's own I/O thread (a delivery callback)"
            )
        if not self.thread.is_alive():
            coro.close()
            raise IllegalStateError(f"{what}: the client's I/O thread has stopped (the client is closed)")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise KafkaTimeoutError(f"{what} did not finish within {timeout_s}s") from None

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Schedule ``fn()`` on the loop from any thread."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the loop and join the thread (cancels what still runs on it)."""
        if self.in_loop_thread() or self.loop.is_closed():
            return

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_rest(), self.loop).result(timeout_s)
        except Exception:  # noqa: BLE001 - stopping is best effort
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout_s)
