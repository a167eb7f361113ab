"""The asyncio driver of the pure Raft core: timers, persistence, transport, apply.

One driver per node owns the ``RaftNode`` and its storage, and applies committed
entries to a ``StateMachine`` (on a node: the metadata loader; the driver knows
nothing of what the entries mean).
Everything that touches the core runs on the event loop, and never while a
``Ready`` is being carried out: between ``ready()`` and ``advance()`` the driver is
*busy*, and inbound messages, ticks, proposals and reports wait in a queue that is
drained right after ``advance()`` (which also batches them: one persist per burst).

The Ready cycle, as the core's docstrings order it:

1. persist hard state + snapshot + entries as one synced write, in a one-thread
   executor so the event loop keeps serving RPCs while the disk syncs;
2. hand the messages to the transport (only now: votes and acks promise state
   that is now durable);
3. load a received snapshot, apply committed entries to the state machine,
   resolve proposals and ReadIndex waiters;
4. ``advance(ready)``; then maybe take a metadata snapshot and compact the log.

Proposals are futures keyed by (term, last index): resolved once that index is
applied with that term, failed with ``NotLeaderError`` when another term's entry
commits there, or when this node stops being the leader first. Errors are
Raft-level (node/quorum/errors.py); callers translate them.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from raftlog.node.config import NodeConfig
from raftlog.node.logging import get_logger
from raftlog.node.quorum.errors import (
    DriverStoppedError,
    InvalidProposalError,
    NotLeaderError,
    QuorumError,
    QuorumTimeoutError,
)
from raftlog.node.quorum.transport import Transport
from raftlog.raft import (
    Config,
    InvalidMessageError,
    ProposalDroppedError,
    RaftNode,
)
from raftlog.raft import NotLeaderError as CoreNotLeaderError
from raftlog.raft.storage import RaftStorage
from raftlog.raft.types import NONE, Entry, Message, ReadState, Ready, Role, Snapshot, Status

T = TypeVar("T")


class StateMachine(Protocol):
    """What the driver applies committed entries to, snapshots and restores."""

    @property
    def applied_index(self) -> int:
        """Raft index of the last entry applied (or covered by the restored snapshot)."""
        ...

    def apply(self, entries: Sequence[Entry]) -> None:
        """Apply committed entries, in order (entries already applied are skipped)."""

    def snapshot(self) -> bytes:
        """The state at ``applied_index``, as snapshot data."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the state with a snapshot's."""

    def check_snapshot(self, data: bytes) -> None:
        """Raise ValueError unless ``data`` is a snapshot :meth:`restore` accepts."""


SM = TypeVar("SM", bound=StateMachine)

MAX_SIZE_PER_MSG = 1 << 20
MAX_INFLIGHT_MSGS = 256
MAX_INFLIGHT_BYTES = 32 << 20
_REPLAY_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class ProposalResult:
    """Where a committed proposal landed: its entries are ``first..last`` of ``term``."""

    term: int
    first_index: int
    last_index: int


@dataclass(slots=True)
class _Proposal:
    term: int
    first_index: int
    last_index: int
    future: asyncio.Future[ProposalResult]


class RaftDriver(Generic[SM]):
    """Drives one ``RaftNode``; see the module docstring. Loop-thread only."""

    def __init__(
        self,
        config: NodeConfig,
        storage: RaftStorage,
        state_machine: SM,
        transport: Transport,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.node_id = config.node_id
        self.storage = storage
        self.state_machine = state_machine
        self.transport = transport
        self._rng = rng if rng is not None else random.Random()
        self._base_logger = get_logger("raft", self.node_id)
        self.logger = self._base_logger
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"raft-io-{self.node_id}")
        self._core: RaftNode | None = None

        # Soft view of the core, updated from every Ready (read without the core).
        self.leader_id = NONE
        self.role = Role.FOLLOWER
        self.term = 0
        self.commit = 0
        self.applied = 0
        self.snapshot_index = 0
        #: Index of the last entry in this node's log (a leader's next append is +1).
        self.last_index = 0
        #: Last index promised to appends still queued behind a Ready (0: none).
        self._queued_index = 0
        #: How many appends failed before reaching the log (see ``append``).
        self.append_failures = 0
        self._queued_appends: set[asyncio.Future[ProposalResult]] = set()
        #: time.monotonic() of the last message received from each peer.
        self.last_received: dict[int, float] = {}
        #: time.monotonic() of the last proposal this node made as leader.
        self.last_proposal_at = 0.0
        #: Term of the last applied entry: a leader decides only once it has applied
        #: an entry of its own term, i.e. once its image holds every committed record.
        self.applied_term = 0

        self._busy = False
        self._pending: deque[tuple[Callable[[RaftNode], Any], asyncio.Future[Any] | None]] = deque()
        self._pending_ticks = 0
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._proposals: dict[int, _Proposal] = {}
        self._reads: dict[bytes, asyncio.Future[int]] = {}
        self._read_waiters: list[tuple[int, asyncio.Future[int]]] = []
        self._read_ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.stopped = asyncio.Event()
        #: Set when the driver died (a storage write failed): the node must exit.
        self.fatal: BaseException | None = None
        self.died = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle
    def restore(self) -> None:
        """Rebuild the applied state from storage (snapshot, then committed entries)
        and create the core. Runs before ``start()``; raises storage errors."""
        snapshot = self.storage.snapshot()
        if not snapshot.is_empty():
            self._check_snapshot_voters(snapshot)
            self.state_machine.restore(snapshot.data)
        self.snapshot_index = snapshot.meta.index
        hard_state = self.storage.hard_state()
        applied = snapshot.meta.index
        commit = min(hard_state.commit, self.storage.last_index())
        while applied < commit:
            chunk = self.storage.entries(applied + 1, commit + 1, _REPLAY_CHUNK_BYTES)
            self.state_machine.apply(chunk)
            applied = chunk[-1].index
            self.applied_term = chunk[-1].term
        if applied == snapshot.meta.index:
            self.applied_term = snapshot.meta.term
        self.applied = applied
        self.last_index = self.storage.last_index()
        self.commit = max(hard_state.commit, applied)
        self.term = hard_state.term
        self._core = RaftNode(
            Config(
                id=self.node_id,
                voters=self.config.voter_ids,
                election_tick=self.config.election_tick,
                heartbeat_tick=self.config.heartbeat_tick,
                max_size_per_msg=MAX_SIZE_PER_MSG,
                max_inflight_msgs=MAX_INFLIGHT_MSGS,
                max_inflight_bytes=MAX_INFLIGHT_BYTES,
                pre_vote=True,
                check_quorum=True,
                applied=applied,
            ),
            self.storage,
            self._rng,
        )
        self.logger = self._base_logger.bind(role=self.role.value, term=self.term)
        self.logger.info(
            "raft state restored",
            snapshot_index=snapshot.meta.index,
            applied=applied,
            last_index=self.storage.last_index(),
            state_machine_index=self.state_machine.applied_index,
        )

    def start(self) -> None:
        if self._core is None:
            self.restore()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name=f"raft-ready-{self.node_id}"),
            loop.create_task(self._ticker(), name=f"raft-tick-{self.node_id}"),
        ]
        self._kick()

    async def stop(self) -> None:
        """Finish the Ready in progress, stop timers, fail every waiter, release the
        executor. Storage stays open (its owner closes it)."""
        if self._stopping:
            await self.stopped.wait()
            return
        self._stopping = True
        self._kick()
        ticker = self._tasks[1] if len(self._tasks) > 1 else None
        if ticker is not None:
            ticker.cancel()
        if self._tasks:
            # The Ready loop exits at its next check; never cancel it mid-persist.
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_everything(DriverStoppedError())
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        self.stopped.set()
        self._notify()

    # ------------------------------------------------------------------ state
    @property
    def is_leader(self) -> bool:
        return self.role == Role.LEADER

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._stopping and self.fatal is None

    @property
    def next_index(self) -> int:
        """The index the next ``append`` on this leader will get."""
        return max(self.last_index, self._queued_index) + 1

    def address_of(self, node_id: int) -> str:
        """Where a node can be reached: its voter address (subclasses may know better)."""
        voter = self.config.voter(node_id)
        return voter.address if voter is not None else ""

    def leader_address(self, leader_id: int | None = None) -> str:
        """Where the given (default: current) leader can be reached ("" if none)."""
        lid = self.leader_id if leader_id is None else leader_id
        return "" if lid == NONE else self.address_of(lid)

    def not_leader(self, message: str = "this node is not the leader", leader_id: int | None = None) -> NotLeaderError:
        """A NotLeaderError naming the leader this node knows."""
        lid = self.leader_id if leader_id is None else leader_id
        return NotLeaderError(message, lid, self.leader_address(lid))

    async def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` holds after some state change; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.stopped.is_set():
                return predicate()
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return predicate()
        return True

    async def wait_for_leader(self, timeout_s: float) -> int:
        """The current leader id, waiting up to ``timeout_s`` for one (0 if none)."""
        await self.wait_until(lambda: self.leader_id != NONE, timeout_s)
        return self.leader_id

    # ------------------------------------------------------------------ inputs
    async def step(self, messages: Sequence[Message]) -> None:
        """Step a batch from one peer. Raises the core's InvalidMessageError for the
        first message it refuses (the messages before it were stepped)."""
        for msg in messages:
            if msg.snapshot is not None:
                # Validated in full before the core persists it: a snapshot that does
                # not restore would crash-loop this node on every start.
                try:
                    self.state_machine.check_snapshot(msg.snapshot.data)
                except ValueError as exc:
                    raise InvalidMessageError(f"snapshot from node {msg.sender}: {exc}") from None
        now = time.monotonic()
        for msg in messages:
            self.last_received[msg.sender] = now

        def step_all(core: RaftNode) -> None:
            for msg in messages:
                core.step(msg)

        await self._call(step_all)

    def append(self, records: Sequence[bytes]) -> tuple[ProposalResult, asyncio.Future[ProposalResult]]:
        """Append ``records`` (one entry each) to the leader's log, now or right after
        the Ready in progress (so appends made during one disk sync share the next),
        and return where they will land with a future resolved once they are
        committed and applied here.

        The offsets are known at once (appends are queued in order); an append that
        cannot land exactly there (leadership lost or changed, a transfer in
        progress, an earlier queued append failed) is not made, its future fails
        with NotLeaderError and ``append_failures`` grows, so a caller that built
        state on it knows to drop that state. Raises NotLeaderError when this node
        is not the leader now."""
        if not records:
            raise InvalidProposalError("no records to propose")
        self._check_running()
        if not self.is_leader:
            raise self.not_leader()
        first = self.next_index
        expected = ProposalResult(self.term, first, first + len(records) - 1)
        self._queued_index = expected.last_index
        future: asyncio.Future[ProposalResult] = asyncio.get_running_loop().create_future()
        data = list(records)

        def fail(error: NotLeaderError) -> None:
            self.append_failures += 1
            self._queued_index = 0  # appends queued after this one fail their check too
            if not future.done():
                future.set_exception(error)

        def do_append(core: RaftNode) -> None:
            self._queued_appends.discard(future)
            status = core.status()
            if (status.term, status.last_index + 1) != (expected.term, expected.first_index):
                fail(self.not_leader(f"the log moved before the append (term {status.term}, "
                                     f"next index {status.last_index + 1}, expected {expected})"))
                return
            try:
                term, first, last = core.propose(data)
            except CoreNotLeaderError as exc:
                fail(self.not_leader(leader_id=getattr(exc, "leader_id", self.leader_id)))
                return
            except ProposalDroppedError as exc:
                fail(self.not_leader(f"proposal dropped: {exc}"))
                return
            self.last_proposal_at = time.monotonic()
            self.last_index = last
            self._proposals[last] = _Proposal(term, first, last, future)

        if self._busy:
            self._queued_appends.add(future)
        self._do(do_append)
        return expected, future

    async def propose(self, records: Sequence[bytes], timeout_s: float) -> ProposalResult:
        """Propose ``records`` (one entry each) and wait until they are committed and
        applied here. Raises NotLeaderError (with the leader) or QuorumTimeoutError."""
        _, future = self.append(records)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise QuorumTimeoutError(f"proposal not committed within {timeout_s * 1000:.0f} ms") from None

    async def read_index(self, timeout_s: float) -> int:
        """A linearizable read barrier (Raft ReadIndex): returns an index that, once
        applied here (this returns only then), covers every write committed before
        the call. Raises QuorumTimeoutError when no leader confirms in time."""
        ctx = f"{self.node_id}:{next(self._read_ids)}".encode()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads[ctx] = future

        def do_read(core: RaftNode) -> None:
            try:
                core.read_index(ctx)
            except CoreNotLeaderError:
                raise self.not_leader("no leader to confirm a read index") from None

        try:
            await self._call(do_read)
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise QuorumTimeoutError(f"read index not confirmed within {timeout_s * 1000:.0f} ms") from None
        finally:
            self._reads.pop(ctx, None)

    async def status(self) -> Status:
        return await self._call(lambda core: core.status())

    async def transfer_leadership(self, to: int) -> None:
        await self._call(lambda core: core.transfer_leadership(to))

    async def campaign(self) -> None:
        await self._call(lambda core: core.campaign())

    # TransportFeedback
    def report_unreachable(self, peer: int) -> None:
        self._do(lambda core: core.report_unreachable(peer))

    def report_snapshot(self, peer: int, ok: bool) -> None:
        self._do(lambda core: core.report_snapshot(peer, ok))

    # ------------------------------------------------------------------ plumbing
    def _kick(self) -> None:
        self._wake.set()

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _check_running(self) -> RaftNode:
        if self._core is None or self._stopping or self.fatal is not None:
            raise DriverStoppedError()
        return self._core

    async def _call(self, fn: Callable[[RaftNode], T]) -> T:
        """Run ``fn`` against the core now, or right after the Ready in progress."""
        core = self._check_running()
        if not self._busy:
            result = fn(core)
            self._kick()
            return result
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((fn, future))
        return await future

    def _do(self, fn: Callable[[RaftNode], object]) -> None:
        """Fire-and-forget variant of ``_call`` for callbacks."""
        if self._core is None or self._stopping or self.fatal is not None:
            return
        if not self._busy:
            fn(self._core)
            self._kick()
        else:
            self._pending.append((fn, None))

    def _drain_pending(self, core: RaftNode) -> None:
        while self._pending:
            fn, future = self._pending.popleft()
            if future is not None and future.done():
                continue  # the caller gave up
            try:
                result = fn(core)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if future is not None:
                    future.set_exception(exc)
                else:
                    self.logger.warning("deferred raft call failed", error=str(exc))
                continue
            if future is not None:
                future.set_result(result)

    async def _ticker(self) -> None:
        interval = self.config.tick_ms / 1000
        while True:
            await asyncio.sleep(interval)
            self._pending_ticks += 1
            self._kick()

    async def _run(self) -> None:
        assert self._core is not None
        core = self._core
        try:
            while not self._stopping:
                await self._wake.wait()
                self._wake.clear()
                while not self._stopping:
                    self._drain_pending(core)
                    ticks = min(self._pending_ticks, self.config.election_tick)
                    self._pending_ticks = 0
                    for _ in range(ticks):
                        core.tick()
                    if not core.has_ready():
                        break
                    await self._handle_ready(core, core.ready())
                    await self._maybe_snapshot()
        except Exception as exc:
            # A failed write leaves the core ahead of the disk: nothing may continue.
            self.fatal = exc
            self.logger.critical("raft driver failed; the node must stop", error=repr(exc),
                               exc_info=True)
            self._fail_everything(DriverStoppedError(f"raft driver failed: {exc}"))
            self.died.set()
            self._notify()

    async def _handle_ready(self, core: RaftNode, ready: Ready) -> None:
        self._busy = True
        try:
            if ready.must_sync():
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self.storage.persist, ready.hard_state, ready.snapshot,
                    list(ready.entries),
                )
            if ready.entries:
                self.last_index = ready.entries[-1].index
            self._on_state(ready)
            if ready.snapshot is not None and not ready.snapshot.is_empty():
                self._install_snapshot(ready.snapshot)
            if ready.messages:
                self.transport.send(ready.messages)
            if ready.committed_entries:
                self._apply(ready.committed_entries)
            if ready.read_states:
                self._on_read_states(ready.read_states)
            core.advance(ready)
        finally:
            self._busy = False

    def _on_state(self, ready: Ready) -> None:
        changed = False
        if ready.hard_state is not None:
            hs = ready.hard_state
            if hs.term != self.term:
                self.term = hs.term
                changed = True
            self.commit = max(self.commit, hs.commit)
        soft = ready.soft_state
        role_changed = False
        if soft is not None and (soft.role != self.role or soft.leader_id != self.leader_id):
            role_changed = soft.role != self.role
            old_role = self.role
            # The core drops unconfirmed ReadIndex requests when the leader changes
            # (etcd does too); fail them now so callers retry on the new leader
            # instead of waiting out their timeout.
            self._fail_unconfirmed_reads(self.not_leader("the leader changed before the read index was confirmed"))
            self.role = soft.role
            self.leader_id = soft.leader_id
            changed = True
            self._queued_index = 0
            if old_role == Role.LEADER and self.role != Role.LEADER:
                self._fail_proposals(self.not_leader("leadership lost before the proposal committed"))
        if changed:
            self.logger = self._base_logger.bind(role=self.role.value, term=self.term)
            if role_changed:
                self.logger.info("raft role changed", leader_id=self.leader_id)
            else:
                self.logger.info("raft leader or term changed", leader_id=self.leader_id)
            self._notify()

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        self._check_snapshot_voters(snapshot)
        self.state_machine.restore(snapshot.data)
        self.applied = max(self.applied, snapshot.meta.index)
        self.snapshot_index = max(self.snapshot_index, snapshot.meta.index)
        self.logger.info("snapshot installed from leader", index=snapshot.meta.index,
                       snapshot_term=snapshot.meta.term)
        # Proposals covered by the snapshot cannot be matched to their entries.
        for last in [k for k in self._proposals if k <= snapshot.meta.index]:
            p = self._proposals.pop(last)
            if not p.future.done():
                p.future.set_exception(
                    self.not_leader("proposal outcome unknown (replaced by a snapshot)")
                )
        self.applied_term = snapshot.meta.term
        self._serve_reads()
        self._notify()

    def _apply(self, entries: Sequence[Entry]) -> None:
        self.state_machine.apply(entries)
        self.applied = max(self.applied, entries[-1].index)
        self.applied_term = entries[-1].term
        self.commit = max(self.commit, self.applied)
        for entry in entries:
            p = self._proposals.pop(entry.index, None)
            if p is None or p.future.done():
                continue
            if entry.term == p.term:
                p.future.set_result(ProposalResult(p.term, p.first_index, p.last_index))
            else:
                p.future.set_exception(
                    self.not_leader(
                        f"entry {entry.index} was overwritten by term {entry.term} "
                        f"(proposed in term {p.term})"
                    )
                )
        self._serve_reads()
        self._notify()

    @property
    def decisions_ready(self) -> bool:
        """Leader that has applied an entry of its own term: its state is complete."""
        return self.is_leader and self.applied_term == self.term

    def _on_read_states(self, read_states: Sequence[ReadState]) -> None:
        for rs in read_states:
            future = self._reads.get(rs.context)
            if future is not None and not future.done():
                self._read_waiters.append((rs.index, future))
        self._serve_reads()

    def _serve_reads(self) -> None:
        if not self._read_waiters:
            return
        waiting = []
        for index, future in self._read_waiters:
            if future.done():
                continue
            if index <= self.applied:
                future.set_result(index)
            else:
                waiting.append((index, future))
        self._read_waiters = waiting

    async def _maybe_snapshot(self) -> None:
        if self.applied - self.snapshot_index < self.config.snapshot_every or self._stopping:
            return
        index = self.applied
        if self.state_machine.applied_index != index:
            return  # the state lags the log (cannot happen once apply ran); try later
        data = self.state_machine.snapshot()
        compact_to = index - self.config.snapshot_keep_entries
        self._busy = True
        try:
            def write() -> None:
                self.storage.create_snapshot(index, self.config.voter_ids, data)
                if compact_to > 0:
                    self.storage.compact(compact_to)

            await asyncio.get_running_loop().run_in_executor(self._executor, write)
        finally:
            self._busy = False
        self.snapshot_index = index
        self.logger.info("metadata snapshot taken", index=index, bytes=len(data),
                       compacted_to=max(0, compact_to))

    def _check_snapshot_voters(self, snapshot: Snapshot) -> None:
        voters = tuple(sorted(snapshot.meta.voters))
        if voters and voters != tuple(sorted(self.config.voter_ids)):
            self.logger.warning(
                "snapshot voter set differs from the configured voters",
                snapshot_voters=list(voters),
                configured_voters=list(self.config.voter_ids),
            )

    def _fail_proposals(self, error: QuorumError) -> None:
        proposals, self._proposals = self._proposals, {}
        for p in proposals.values():
            if not p.future.done():
                p.future.set_exception(error)

    def _fail_unconfirmed_reads(self, error: QuorumError) -> None:
        confirmed = {id(future) for _, future in self._read_waiters}
        for future in self._reads.values():
            if not future.done() and id(future) not in confirmed:
                future.set_exception(error)

    def _fail_everything(self, error: QuorumError) -> None:
        self._fail_proposals(error)
        queued, self._queued_appends = self._queued_appends, set()
        for append in queued:
            if not append.done():
                append.set_exception(error)
        for _, future in self._pending:
            if future is not None and not future.done():
                future.set_exception(error)
        self._pending.clear()
        for future in self._reads.values():
            if not future.done():
                future.set_exception(error)
        for _, future in self._read_waiters:
            if not future.done():
                future.set_exception(error)
        self._read_waiters = []
