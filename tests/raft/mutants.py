"""Known bugs the simulation must catch: each new kind of chaos is only worth its
CPU if some realistic mistake fails under it.

Run one with ``python -m tests.raft.sim --seed N --nodes K --mutant NAME``.
Mutants of the simulated driver (``SIM_MUTANTS``) are switches in tests/raft/sim.py;
mutants of the core are patched onto ``RaftNode`` for the run only, by
``applied()``. Nothing here is reachable from the product code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from raftlog.raft import NONE, Message, MessageType, RaftNode

MUTANTS: dict[str, str] = {
    "send-before-sync": (
        "the driver sends a Ready's messages before its write is synced, as NodeDB(sync=False) does"
    ),
    "trust-torn-tail": "storage recovery keeps a torn last write instead of discarding it",
    "lease-read": (
        "a leader answers ReadIndex at once while it holds a lease (an election timeout, on its own "
        "clock, from a heartbeat round a quorum acknowledged) instead of confirming each read"
    ),
    "silent-overflow": (
        "the transport drops messages from an overflowing queue without telling the core "
        "(node/transport.py before the fix)"
    ),
    "active-on-send": (
        "check_quorum counts a follower active when the leader sends it a heartbeat, not when "
        "the follower answers"
    ),
}

#: Implemented by the simulated driver/disk/network, not by patching the core.
SIM_MUTANTS = frozenset({"send-before-sync", "trust-torn-tail", "silent-overflow"})


def _lease_read() -> dict[str, Callable[..., Any]]:
    """A leader lease: after a quorum acknowledged a heartbeat round sent at local
    tick S, answer reads without a round until tick S + election_tick - 2.
    Sound while clocks advance together (a follower that acked will not vote
    for anyone else for an election timeout, check_quorum on) and no leadership
    transfer is under way; a paused leader's clock stops, so it is not."""
    tick, step_leader = RaftNode.tick, RaftNode._step_leader
    bcast, leader_read = RaftNode._bcast_heartbeat, RaftNode._leader_read_index

    def clock(node: RaftNode) -> int:
        value: int = node.__dict__.get("_mutant_clock", 0)
        return value

    def tick_(self: RaftNode) -> None:
        self.__dict__["_mutant_clock"] = clock(self) + 1
        tick(self)

    def bcast_(self: RaftNode, ctx: bytes) -> None:
        if ctx:
            self.__dict__.setdefault("_mutant_sent", {}).setdefault(ctx, (self.term, clock(self)))
        bcast(self, ctx)

    def step_leader_(self: RaftNode, m: Message) -> None:
        step_leader(self, m)
        sent = self.__dict__.get("_mutant_sent", {})
        if m.type is MessageType.HEARTBEAT_RESPONSE and m.context in sent:
            if m.context not in self._read_only._pending:  # confirmed by a quorum
                term, at = sent.pop(m.context)
                if term == self.term:
                    until = at + self._cfg.election_tick - 2
                    old_term, old_until = self.__dict__.get("_mutant_lease", (0, -1))
                    self.__dict__["_mutant_lease"] = (term, max(until, old_until) if old_term == term else until)

    def leader_read_(self: RaftNode, ctx: bytes, origin: int) -> None:
        term, until = self.__dict__.get("_mutant_lease", (0, -1))
        if (
            self._cfg.check_quorum
            and term == self.term
            and clock(self) <= until
            and self._lead_transferee == NONE
            and self._committed_in_current_term()
        ):
            self._answer_read(self._log.committed, ctx, origin)
            return
        leader_read(self, ctx, origin)

    return {
        "tick": tick_,
        "_bcast_heartbeat": bcast_,
        "_step_leader": step_leader_,
        "_leader_read_index": leader_read_,
    }


def _active_on_send() -> dict[str, Callable[..., Any]]:
    bcast = RaftNode._bcast_heartbeat

    def bcast_(self: RaftNode, ctx: bytes) -> None:
        bcast(self, ctx)
        for pr in self._prs.values():
            pr.recent_active = True

    return {"_bcast_heartbeat": bcast_}


_CORE_PATCHES: dict[str, Callable[[], dict[str, Callable[..., Any]]]] = {
    "lease-read": _lease_read,
    "active-on-send": _active_on_send,
}
assert set(_CORE_PATCHES) | SIM_MUTANTS == set(MUTANTS)


@contextlib.contextmanager
def applied(name: str | None) -> Iterator[None]:
    """Patch the core with mutant ``name`` for the duration (no-op for None and
    for the simulated driver's mutants)."""
    make = _CORE_PATCHES.get(name) if name is not None else None
    if make is None:
        yield
        return
    patches = make()
    saved = {attr: RaftNode.__dict__[attr] for attr in patches}
    try:
        for attr, fn in patches.items():
            setattr(RaftNode, attr, fn)
        yield
    finally:
        for attr, fn in saved.items():
            setattr(RaftNode, attr, fn)
