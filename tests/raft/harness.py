"""A tiny synchronous driver for unit tests: N cores, MemoryStorage, a message
queue with per-link filtering. Deterministic: rngs are seeded per node."""

from __future__ import annotations

import random
from collections.abc import Callable

from raftlog.raft import Config, Entry, Message, RaftNode, ReadState, Ready, Role
from raftlog.raft.storage import MemoryStorage


class Cluster:
    def __init__(self, n: int = 3, seed: int = 0, **cfg: object) -> None:
        self.ids = tuple(range(1, n + 1))
        self.cfg = cfg
        self.seed = seed
        self.storages = {i: MemoryStorage() for i in self.ids}
        self.nodes: dict[int, RaftNode] = {}
        self.applied: dict[int, list[Entry]] = {i: [] for i in self.ids}
        self.read_states: dict[int, list[ReadState]] = {i: [] for i in self.ids}
        self.queue: list[Message] = []
        self.sent: list[Message] = []  # every message handed to the network
        self.cut: set[frozenset[int]] = set()
        #: Extra filter: return False to drop a message.
        self.filter: Callable[[Message], bool] = lambda m: True
        for i in self.ids:
            self.start(i)

    def start(self, i: int, applied: int = 0) -> RaftNode:
        cfg = Config(id=i, voters=self.ids, applied=applied, **self.cfg)  # type: ignore[arg-type]
        self.nodes[i] = RaftNode(cfg, self.storages[i], random.Random(f"{self.seed}-{i}"))
        return self.nodes[i]

    def __getitem__(self, i: int) -> RaftNode:
        return self.nodes[i]

    # -- network ---------------------------------------------------------------
    def isolate(self, i: int) -> None:
        for j in self.ids:
            if j != i:
                self.cut.add(frozenset((i, j)))

    def heal(self) -> None:
        self.cut.clear()

    def can_deliver(self, m: Message) -> bool:
        return frozenset((m.sender, m.to)) not in self.cut and self.filter(m)

    # -- driving ---------------------------------------------------------------
    def process(self, i: int) -> Ready:
        """One driver iteration: persist, send, apply, advance."""
        node = self.nodes[i]
        rd = node.ready()
        self.storages[i].persist(rd.hard_state, rd.snapshot, rd.entries)
        self.queue.extend(rd.messages)
        self.sent.extend(rd.messages)
        if rd.snapshot is not None:
            self.applied[i] = [e for e in self.applied[i] if e.index <= rd.snapshot.meta.index]
        self.applied[i].extend(rd.committed_entries)
        self.read_states[i].extend(rd.read_states)
        node.advance(rd)
        return rd

    def flush(self) -> None:
        """Process every pending Ready (messages go to the queue)."""
        for i in self.ids:
            while self.nodes[i].has_ready():
                self.process(i)

    def deliver(self, limit: int | None = None) -> int:
        """Deliver queued messages (and the Readies they cause) until quiet, or
        at most ``limit`` messages."""
        delivered = 0
        for _ in range(limit if limit is not None else 100_000):
            self.flush()
            if not self.queue:
                return delivered
            m = self.queue.pop(0)
            if self.can_deliver(m):
                self.nodes[m.to].step(m)
                delivered += 1
        if limit is not None:
            self.flush()
            return delivered
        raise AssertionError("cluster did not quiesce")

    def tick(self, *ids: int, times: int = 1) -> None:
        for _ in range(times):
            for i in ids or self.ids:
                self.nodes[i].tick()
            self.deliver()

    def elect(self, i: int) -> None:
        self.nodes[i].campaign()
        self.deliver()
        assert self.nodes[i].role is Role.LEADER, self.nodes[i].status()

    def leaders(self) -> list[int]:
        return [i for i in self.ids if self.nodes[i].role is Role.LEADER]

    def take(self, pred: Callable[[Message], bool]) -> list[Message]:
        """Remove and return queued messages matching ``pred``."""
        out = [m for m in self.queue if pred(m)]
        self.queue = [m for m in self.queue if not pred(m)]
        return out


def preload(storage: MemoryStorage, terms: list[int], term: int, vote: int = 0) -> None:
    """Give a storage a log whose entry i+1 has term terms[i]."""
    from raftlog.raft import HardState

    entries = [Entry(term=t, index=k + 1, data=f"e{k + 1}t{t}".encode()) for k, t in enumerate(terms)]
    storage.persist(HardState(term=term, vote=vote, commit=0), None, entries)
