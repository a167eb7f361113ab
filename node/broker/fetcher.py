"""ReplicaFetcher: one per leader broker, pulling every partition this broker follows
on that leader with one ReplicaFetch RPC (Kafka's fetcher thread + fetch session).

Per partition, after it became a follower under a new leader epoch:
1. truncate: OffsetForLeaderEpoch(latest local epoch) and drop the divergent suffix
   (KIP-101/279), repeated until the epoch cache agrees with the leader's;
2. fetch from the log end with ``current_leader_epoch`` and the last fetched epoch;
   the leader checks it on every fetch and answers a diverged follower with its
   DivergingEpoch (Kafka since 2.7), which is truncated by like step 1; otherwise
   append the leader's batches unchanged (all partitions of a response in one
   event-loop turn, so the group committer syncs them once); follower HW =
   min(leader HW, own LEO). The decisions are pure
   (``raftlog.node.broker.partition.follower``); this module does the RPCs and I/O.

Partition errors park the partition for ``replica_fetch_backoff_ms`` (a metadata
update re-adds it under a new generation and resets the wait); transport errors back
off the whole fetcher. The loop is bounded by its stop event and cancellation-safe:
log mutations hold the partition's lock and re-check the follower generation.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from structlog.typing import FilteringBoundLogger

from raftlog.node.broker.clients import PeerClientFactory, ReplicationPeer
from raftlog.node.broker.config import BrokerConfig
from raftlog.node.broker.partition import Partition, Role, group_batches, now_ms
from raftlog.node.broker.partition.follower import FollowerFetchState, TruncateFullyAndStartAt
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import replication_pb2

_MAX_BACKOFF_MS = 2_000
#: Leader-side errors that mean "this broker's metadata and the leader's disagree":
#: wait for the next image (which re-adds the partition) or retry after a backoff.
_WAIT_FOR_METADATA = frozenset({
    ErrorCode.NOT_LEADER_OR_FOLLOWER,
    ErrorCode.FENCED_LEADER_EPOCH,
    ErrorCode.UNKNOWN_LEADER_EPOCH,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.UNKNOWN_TOPIC_ID,
    ErrorCode.REPLICA_NOT_AVAILABLE,
})


@dataclass(slots=True)
class FetchState:
    """A followed partition and its pure fetch decisions."""

    partition: Partition
    follow: FollowerFetchState

    @property
    def generation(self) -> int:
        return self.follow.generation

    @property
    def key(self) -> tuple[str, int]:
        return (self.partition.topic_id, self.partition.partition)

    @property
    def current(self) -> bool:
        p = self.partition
        return p.role is Role.FOLLOWER and p.follower_generation == self.generation and not p.removed


class ReplicaFetcher:
    def __init__(
        self,
        broker_id: int,
        leader_id: int,
        address: str,
        config: BrokerConfig,
        peer_factory: PeerClientFactory,
        broker_epoch: Callable[[], int],
    ) -> None:
        self.broker_id = broker_id
        self.leader_id = leader_id
        self.address = address
        self.config = config
        self._peer_factory = peer_factory
        self._broker_epoch = broker_epoch
        self._peer: ReplicationPeer | None = None
        self._states: dict[tuple[str, int], FetchState] = {}
        self._wake = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failures = 0
        self.fetches = 0
        self.logger: FilteringBoundLogger = structlog.get_logger("fetcher").bind(
            node_id=broker_id, leader=leader_id
        )

    # ------------------------------------------------------------------ control
    def add(self, partition: Partition) -> None:
        """Follow ``partition`` (again): a new generation always truncates first."""
        self._states[(partition.topic_id, partition.partition)] = FetchState(
            partition, FollowerFetchState(partition.follower_generation))
        self._wake.set()

    def remove(self, partition: Partition) -> None:
        self._states.pop((partition.topic_id, partition.partition), None)

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, partition: Partition) -> bool:
        state = self._states.get((partition.topic_id, partition.partition))
        return state is not None and state.partition is partition

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"fetcher-{self.leader_id}")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._resumed.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        peer, self._peer = self._peer, None
        if peer is not None:
            await peer.close()

    def pause(self) -> None:
        """Stop sending fetches (tests: a follower that falls behind)."""
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()
        self._wake.set()

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    # ------------------------------------------------------------------ loop
    def _peer_client(self) -> ReplicationPeer:
        if self._peer is None:
            self._peer = self._peer_factory(self.leader_id, self.address)
        return self._peer

    async def _run(self) -> None:
        while not self._stopping:
            await self._resumed.wait()
            if self._stopping:
                return
            try:
                worked = await self._round()
                self._failures = 0
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                self._failures += 1
                await self._backoff(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - a fetcher must outlive any bug in one round
                self.logger.error("replica fetch round failed", error=repr(exc), exc_info=True)
                self._failures += 1
                await self._backoff(exc)
                continue
            if not worked:
                await self._idle()

    async def _backoff(self, exc: BaseException) -> None:
        delay_ms = min(_MAX_BACKOFF_MS, self.config.replica_fetch_backoff_ms * (2 ** min(self._failures - 1, 4)))
        log = self.logger.warning if self._failures in (1, 10) or self._failures % 50 == 0 else self.logger.debug
        log("replica fetch failed; backing off", error=str(exc), failures=self._failures, backoff_ms=delay_ms)
        await self._sleep(delay_ms)

    async def _sleep(self, delay_ms: float) -> None:
        """Wait up to ``delay_ms``; a new partition (even one added while the last round
        ran) or stop ends the wait early."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, delay_ms) / 1000)
        self._wake.clear()

    async def _idle(self) -> None:
        now = now_ms()
        delays = [s.follow.delayed_until_ms - now for s in self._states.values() if s.follow.delayed_until_ms > now]
        await self._sleep(min(delays) if delays else self.config.replica_fetch_backoff_ms)

    async def _round(self) -> bool:
        """One truncation step and one fetch; False when there was nothing to do."""
        for key, state in list(self._states.items()):
            if not state.current:
                # Superseded: the manager re-adds it when it follows again.
                if self._states.get(key) is state and state.partition.role is not Role.FOLLOWER:
                    del self._states[key]
        now = now_ms()
        ready = [s for s in self._states.values() if s.current and s.follow.delayed_until_ms <= now]
        truncating = [s for s in ready if s.follow.needs_truncation]
        if truncating:
            await self._truncate(truncating)
        fetchable = [s for s in ready if not s.follow.needs_truncation and s.current]
        if not fetchable:
            return bool(truncating)
        await self._fetch(fetchable)
        return True

    # ------------------------------------------------------------------ truncation
    async def _truncate(self, states: list[FetchState]) -> None:
        queries: list[tuple[FetchState, int]] = []
        for state in states:
            p = state.partition
            latest = state.follow.epoch_to_query(p.log)
            if latest is None:
                action = state.follow.truncation_without_epochs(p.log, p.high_watermark)
                if action is not None:
                    await p.truncate_to(action.offset, state.generation)
                continue
            queries.append((state, latest))
        if not queries:
            return
        request = replication_pb2.OffsetForLeaderEpochRequest(replica_id=self.broker_id)
        for state, latest in queries:
            request.partitions.append(replication_pb2.EpochQuery(
                topic_id=state.partition.topic_id,
                partition=state.partition.partition,
                current_leader_epoch=state.partition.leader_epoch,
                leader_epoch=latest,
            ))
        response = await self._peer_client().offset_for_leader_epoch(
            request, self.config.replica_socket_timeout_ms / 1000
        )
        by_key = {(r.topic_id, r.partition): r for r in response.partitions}
        for state, latest in queries:
            result = by_key.get(state.key)
            if result is None or not state.current:
                continue
            if result.HasField("error") and result.error.error_code != 0:
                self._partition_error(state, result.error.error_code, result.error.message)
                continue
            await self._apply_epoch_end(state, latest, result.leader_epoch, result.end_offset)

    async def _apply_epoch_end(self, state: FetchState, asked: int, leader_epoch: int, end_offset: int) -> None:
        p = state.partition
        leo, latest = p.log_end_offset, p.log.latest_epoch()
        step = state.follow.on_epoch_end(p.log, p.high_watermark, leader_epoch, end_offset)
        if await p.truncate_to(step.offset, state.generation):
            self.logger.debug("epoch check", topic=p.topic, partition=p.partition, asked_epoch=asked,
                              leader_epoch=leader_epoch, end_offset=end_offset, truncated_to=step.offset,
                              done=step.truncation_completed)
            state.follow.after_truncation(step, leo, latest, p.log)

    async def _apply_diverging_epoch(self, state: FetchState, epoch: int, end_offset: int) -> None:
        p = state.partition
        leo, latest = p.log_end_offset, p.log.latest_epoch()
        step = state.follow.on_diverging_epoch(p.log, p.high_watermark, epoch, end_offset)
        if await p.truncate_to(step.offset, state.generation):
            self.logger.info("leader reports a diverging epoch", topic=p.topic, partition=p.partition,
                             last_fetched_epoch=latest, leader_epoch=epoch, end_offset=end_offset,
                             truncated_to=step.offset, done=step.truncation_completed)
            if not state.follow.after_truncation(step, leo, latest, p.log):
                state.follow.on_no_progress(now_ms(), self.config.replica_fetch_backoff_ms)

    # ------------------------------------------------------------------ fetch
    async def _fetch(self, states: list[FetchState]) -> None:
        cfg = self.config
        request = replication_pb2.ReplicaFetchRequest(
            replica_id=self.broker_id,
            broker_epoch=max(0, self._broker_epoch()),
            max_wait_ms=cfg.replica_fetch_wait_max_ms,
            min_bytes=cfg.replica_fetch_min_bytes,
            max_bytes=cfg.replica_fetch_response_max_bytes,
        )
        # Rotate so one busy partition does not always take the response budget.
        shift = self.fetches % len(states)
        ordered = states[shift:] + states[:shift]
        offsets: dict[tuple[str, int], int] = {}
        for state in ordered:
            p = state.partition
            fetch_offset = state.follow.fetch_offset(p.log)
            offsets[state.key] = fetch_offset
            item = replication_pb2.ReplicaFetchPartition(
                topic_id=p.topic_id,
                partition=p.partition,
                fetch_offset=fetch_offset,
                current_leader_epoch=p.leader_epoch,
                max_bytes=cfg.replica_fetch_max_bytes,
            )
            last_fetched_epoch = state.follow.last_fetched_epoch(p.log)
            if last_fetched_epoch is not None:
                item.last_fetched_epoch = last_fetched_epoch
            request.partitions.append(item)
        self.fetches += 1
        timeout = (cfg.replica_fetch_wait_max_ms + cfg.replica_socket_timeout_ms) / 1000
        response = await self._peer_client().replica_fetch(request, timeout)
        by_key = {s.key: s for s in ordered}
        jobs = []
        for data in response.partitions:
            found = by_key.get((data.topic_id, data.partition))
            if found is None or self._states.get(found.key) is not found or not found.current:
                continue
            jobs.append(self._handle(found, data, offsets[found.key]))
        # Concurrently: the appends of all partitions land in one group commit.
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                self.logger.error("applying fetched data failed", error=repr(result))

    async def _handle(self, state: FetchState, data: replication_pb2.ReplicaFetchPartitionData,
                      fetch_offset: int) -> None:
        p = state.partition
        backoff_ms = self.config.replica_fetch_backoff_ms
        if data.HasField("error") and data.error.error_code != 0:
            code = data.error.error_code
            if code == ErrorCode.OFFSET_OUT_OF_RANGE:
                action = state.follow.on_out_of_range(fetch_offset, data.log_start_offset, data.high_watermark,
                                                      now_ms(), backoff_ms)
                if isinstance(action, TruncateFullyAndStartAt):
                    await p.truncate_fully_and_start_at(action.offset, state.generation)
                elif action is not None:
                    await p.truncate_to(action.offset, state.generation)
            else:
                self._partition_error(state, code, data.error.message)
            return
        if data.HasField("diverging_epoch"):
            await self._apply_diverging_epoch(state, data.diverging_epoch.epoch, data.diverging_epoch.end_offset)
            return
        state.follow.on_fetched()
        try:
            batches = group_batches(data.records)
        except KafkaError as exc:
            self.logger.error("leader sent a corrupt batch; retrying later", topic=p.topic,
                              partition=p.partition, error=str(exc))
            state.follow.on_bad_data(now_ms(), backoff_ms)
            return
        try:
            await p.append_as_follower(batches, state.generation, data.high_watermark)
        except KafkaError as exc:
            # e.g. the leader's data does not start at our log end: find the divergence.
            self.logger.warning("fetched data does not fit the log", topic=p.topic,
                                partition=p.partition, error=str(exc))
            state.follow.on_append_mismatch()

    def _partition_error(self, state: FetchState, code: int, message: str) -> None:
        p = state.partition
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = str(code)
        log = self.logger.debug if code in _WAIT_FOR_METADATA else self.logger.warning
        log("leader refused partition", topic=p.topic, partition=p.partition, error=name, message=message)
        state.follow.on_partition_error(code, now_ms(), self.config.replica_fetch_backoff_ms)
