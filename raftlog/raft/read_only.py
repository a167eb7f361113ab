"""Pending ReadIndex requests on a leader, waiting for a heartbeat quorum."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ReadRequest:
    index: int  # the leader's commit index when the read arrived
    context: bytes
    origin: int  # 0 (NONE) for a local read, else the forwarding follower
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    """Requests in arrival order; one heartbeat round acknowledging a request also
    confirms every earlier one (it was recorded with a smaller or equal index)."""

    __slots__ = ("_pending", "_queue")

    def __init__(self) -> None:
        self._pending: dict[bytes, ReadRequest] = {}
        self._queue: list[bytes] = []

    def add(self, index: int, context: bytes, origin: int) -> bool:
        if context in self._pending:
            return False
        self._pending[context] = ReadRequest(index, context, origin)
        self._queue.append(context)
        return True

    def ack(self, context: bytes, sender: int) -> set[int] | None:
        req = self._pending.get(context)
        if req is None:
            return None
        req.acks.add(sender)
        return req.acks

    def advance(self, context: bytes) -> list[ReadRequest]:
        """Pop ``context`` and every request queued before it."""
        if context not in self._pending:
            return []
        out: list[ReadRequest] = []
        while self._queue:
            ctx = self._queue.pop(0)
            out.append(self._pending.pop(ctx))
            if ctx == context:
                break
        return out

    def last_pending(self) -> bytes | None:
        return self._queue[-1] if self._queue else None

    def __len__(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        self._pending.clear()
        self._queue.clear()

