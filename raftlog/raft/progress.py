"""The leader's replication state for one follower (as etcd's tracker.Progress)."""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"  # one APPEND at a time until the match point is found
    REPLICATE = "replicate"  # optimistic pipelining, bounded by Inflights
    SNAPSHOT = "snapshot"  # waiting for a snapshot to be installed


class Inflights:
    """APPENDs sent but not yet acknowledged, bounded by count and by bytes."""

    __slots__ = ("_max_count", "_max_bytes", "_items", "_bytes")

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._items: deque[tuple[int, int]] = deque()  # (last index, bytes)
        self._bytes = 0

    def add(self, last_index: int, size: int) -> None:
        if self.full():
            raise RuntimeError("inflights full")
        self._items.append((last_index, size))
        self._bytes += size

    def free_le(self, index: int) -> None:
        """Forget every APPEND whose last entry is at or below ``index`` (acknowledged)."""
        while self._items and self._items[0][0] <= index:
            self._bytes -= self._items.popleft()[1]

    def free_first_one(self) -> None:
        if self._items:
            self._bytes -= self._items.popleft()[1]

    def full(self) -> bool:
        return len(self._items) >= self._max_count or (
            self._max_bytes > 0 and self._bytes >= self._max_bytes
        )

    def count(self) -> int:
        return len(self._items)

    def bytes(self) -> int:
        return self._bytes

    def reset(self) -> None:
        self._items.clear()
        self._bytes = 0


class Progress:
    """What the leader knows about one follower's log: ``match`` is durable on the
    follower, ``next`` is the next index to send."""

    __slots__ = (
        "match",
        "next",
        "state",
        "probe_sent",
        "pending_snapshot",
        "recent_active",
        "inflights",
    )

    def __init__(self, next_index: int, max_inflight: int, max_inflight_bytes: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.recent_active = False
        self.inflights = Inflights(max_inflight, max_inflight_bytes)

    def _reset_state(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        # Coming back from a snapshot, the follower has at least the snapshot.
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, n: int) -> bool:
        """An acknowledgement up to ``n``; returns whether ``match`` grew."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        self.next = max(self.next, n + 1)
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """A rejection of the APPEND at ``rejected`` whose follower suggested
        ``match_hint``; returns False if the rejection is stale. Leaves the
        progress probing from the new ``next``."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.become_probe()
        elif self.next - 1 != rejected:
            # In probe (and snapshot) state only the latest probe can be rejected.
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def sent_entries(self, last_index: int | None, size: int) -> None:
        """Record an APPEND carrying entries up to ``last_index`` (None: no entries)."""
        if self.state is ProgressState.REPLICATE:
            if last_index is not None:
                self.next = last_index + 1
                self.inflights.add(last_index, size)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True
