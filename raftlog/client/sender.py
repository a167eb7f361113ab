"""The producer's I/O: drains the accumulator into Produce requests and handles answers.

One asyncio task per producer (Kafka's Sender thread). It sends every partition's
ready batches to the partition's leader — several batches per request when they
are ready together, up to ``max_request_size`` — with at most
``max_in_flight_requests_per_connection`` requests in flight per node.

Idempotence (on by default): the producer id and epoch come from InitProducerId;
each batch gets the partition's next sequence number when it is first sent and
keeps it through retries, so the leader (and any later leader: it rebuilds the
state from its log) answers a retried batch that was already written with its
original offset, and rejects a gap. At most 5 batches per partition are in flight
(the broker remembers the last 5), and after any failure the partition stops
sending until every in-flight batch has answered; the failed ones then go back to
the front of the queue, in sequence order, so a retry never reorders. A batch the
broker refused outright (it was not written) is failed and the sequences of the
batches behind it move down to close the gap (Kafka's
``adjustSequencesDueToFailedBatch``); when a batch's outcome stays unknown (it
expired after being sent), the epoch is bumped and sequences restart at 0 (KIP-360).

Outcomes are handed to the futures in sequence order per partition.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass, field


from raftlog.client.logs import get_logger
from raftlog.client.accumulator import ProducerBatch, RecordAccumulator, SplitTracker
from raftlog.client.config import ProducerConfig
from raftlog.client.connection import ConnectionPool
from raftlog.client.errors import (
    BrokerResponseError,
    KafkaException,
    KafkaTimeoutError,
    ProducerClosedError,
    UnknownServerError,
)
from raftlog.client.metadata import MetadataManager
from raftlog.client.types import TopicPartition
from raftlog.errors import ErrorCode
from raftlog.records import NO_PRODUCER_ID
from raftlog.v1 import broker_pb2

logger = get_logger("raftlog.client.producer")

MAX_IDEMPOTENT_IN_FLIGHT = 5  # the broker keeps the last 5 batches per producer and partition

_LEADER_MOVED = frozenset({
    ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.LEADER_NOT_AVAILABLE,
    ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH, ErrorCode.NETWORK_EXCEPTION,
    ErrorCode.REQUEST_TIMED_OUT, ErrorCode.REPLICA_NOT_AVAILABLE,
})
_PRODUCER_STATE_LOST = frozenset({
    ErrorCode.UNKNOWN_PRODUCER_ID, ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.PRODUCER_FENCED,
})

OK, RETRY, FAIL, SPLIT = "ok", "retry", "fail", "split"


@dataclass
class PartitionState:
    """Sequence numbers and in-flight batches of one partition."""

    next_sequence: int = 0
    inflight: deque[ProducerBatch] = field(default_factory=deque)
    outcomes: dict[ProducerBatch, tuple[str, object]] = field(default_factory=dict)
    recovering: bool = False
    confirmed_epoch: int = -1
    """Epoch of the last batch the leader acknowledged. Until then, one request at a
    time: gRPC may process concurrent requests out of order, and a leader that does
    not know the producer yet accepts any first sequence."""
    to_retry: list[ProducerBatch] = field(default_factory=list)
    dropped: list[ProducerBatch] = field(default_factory=list)


class Sender:
    """Sends the accumulator's batches; one instance per producer, on its event loop."""

    def __init__(self, config: ProducerConfig, accumulator: RecordAccumulator, metadata: MetadataManager,
                 pool: ConnectionPool) -> None:
        self.config = config
        self.accumulator = accumulator
        self.metadata = metadata
        self.pool = pool
        self.idempotent = config.idempotent
        self.producer_id = NO_PRODUCER_ID
        self.producer_epoch = -1
        self.need_epoch_bump = False
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self.node_inflight: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.wakeup = asyncio.Event()
        self.running = True
        self.force_closed = False
        self.last_pid_error: KafkaException | None = None
        self._refresh: asyncio.Future[None] | None = None
        self._rng = random.Random()
        self._request_timeout_s = config.request_timeout_ms / 1000
        self._max_batches = MAX_IDEMPOTENT_IN_FLIGHT if self.idempotent else 1 << 20
        self.stats: dict[str, int] = {
            "requests": 0, "request_errors": 0, "batches_sent": 0, "batches_retried": 0, "batches_split": 0,
            "batches_failed": 0, "records_sent": 0, "epoch_bumps": 0,
        }

    # ------------------------------------------------------------------ main loop
    async def run(self) -> None:
        """Send until closed and everything is delivered or failed."""
        try:
            while True:
                self.wakeup.clear()
                now = time.monotonic()
                self._expire(now)
                if self.accumulator.closing and not self.accumulator.has_queued() and not self._inflight_total() \
                        and not self._any_recovering():
                    break
                if self.metadata.needs_refresh() and (self._refresh is None or self._refresh.done()):
                    # In the background: a slow node must not stall sends to the others.
                    self._refresh = asyncio.ensure_future(self.metadata.maybe_refresh())
                    self._refresh.add_done_callback(lambda _: self.wakeup.set())
                if self.idempotent and (self.producer_id == NO_PRODUCER_ID or self.need_epoch_bump):
                    if not await self._init_producer_id():
                        await self._sleep(self._backoff(1))
                        continue
                ready, wait_s = self.accumulator.ready(now, self._sendable)
                for tp in ready:
                    self._send_partition(tp, now)
                await self._sleep(min(wait_s, 1.0))
        finally:
            self.running = False
            if self._refresh is not None and not self._refresh.done():
                self._refresh.cancel()

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0 or self.wakeup.is_set():
            await asyncio.sleep(0)
            return
        try:
            await asyncio.wait_for(self.wakeup.wait(), seconds)
        except TimeoutError:
            pass

    def wake(self) -> None:
        """Wake the loop (call on the loop's thread)."""
        self.wakeup.set()

    def _inflight_total(self) -> int:
        return sum(self.node_inflight.values())

    def _any_recovering(self) -> bool:
        return any(ps.recovering or ps.inflight for ps in self.partitions.values())

    def _state(self, tp: TopicPartition) -> PartitionState:
        ps = self.partitions.get(tp)
        if ps is None:
            ps = self.partitions[tp] = PartitionState()
        return ps

    def _backoff(self, attempts: int) -> float:
        base = self.config.retry_backoff_ms / 1000 * (2 ** max(0, attempts - 1))
        capped: float = min(base, self.config.retry_backoff_max_ms / 1000)
        return capped * (0.8 + 0.4 * self._rng.random())

    # ------------------------------------------------------------------ producer id
    async def _init_producer_id(self) -> bool:
        bump = self.need_epoch_bump and self.producer_id != NO_PRODUCER_ID
        if bump and self._inflight_total():
            return True  # wait for in-flight requests to answer before changing the epoch
        request = broker_pb2.InitProducerIdRequest(
            producer_id=self.producer_id if bump else -1, producer_epoch=self.producer_epoch if bump else -1
        )
        candidates = [b.address for b in self.metadata.cluster.brokers.values() if not b.fenced]
        candidates += [a for a in self.metadata.bootstrap if a not in candidates]
        for address in candidates:
            try:
                response = await self.pool.call(address, "broker", "InitProducerId", request, self._request_timeout_s)
            except BrokerResponseError as exc:
                self.last_pid_error = exc
                logger.debug("InitProducerId failed", address=address, error=str(exc))
                continue
            old = (self.producer_id, self.producer_epoch)
            self.producer_id, self.producer_epoch = response.producer_id, response.producer_epoch
            self.last_pid_error = None
            if bump or self.need_epoch_bump:
                self.stats["epoch_bumps"] += 1
                self._restart_sequences()
            self.need_epoch_bump = False
            logger.info("producer id assigned", producer_id=self.producer_id, producer_epoch=self.producer_epoch,
                     previous=old)
            return True
        return False

    def _restart_sequences(self) -> None:
        """After an epoch bump: every partition starts again at sequence 0; batches that
        wait for a retry are renumbered in their order."""
        for tp, ps in self.partitions.items():
            sequenced = sorted((b for b in ps.to_retry + self.accumulator.queued(tp) if b.base_sequence >= 0),
                               key=lambda b: b.base_sequence)
            next_seq = 0
            for batch in sequenced:
                batch.build(self.producer_id, self.producer_epoch, next_seq)
                next_seq += batch.record_count
            ps.next_sequence = next_seq
            ps.dropped.clear()

    # ------------------------------------------------------------------ sending
    def _sendable(self, tp: TopicPartition) -> bool:
        if self.force_closed:
            return False
        if self.idempotent and (self.producer_id == NO_PRODUCER_ID or self.need_epoch_bump):
            return False
        ps = self.partitions.get(tp)
        if ps is not None and (ps.recovering or len(ps.inflight) >= self._max_batches):
            return False
        if ps is not None and ps.inflight and (not self.idempotent or ps.confirmed_epoch != self.producer_epoch
                                               or ps.inflight[-1].attempts > 1):
            # Without sequence numbers nothing would stop the broker from applying two
            # concurrent requests out of order: one at a time keeps the order. And while
            # a retry is unresolved nothing new is written behind it, so that the retried
            # batches stay among the last 5 the leader remembers for duplicate detection.
            return False
        leader = self.metadata.leader_for(tp)
        if leader is None:
            self.metadata.add_topics([tp.topic])
            self.metadata.request_update()
            return False
        return self.node_inflight.get(leader[1], 0) < self.config.max_in_flight_requests_per_connection

    def _send_partition(self, tp: TopicPartition, now: float) -> None:
        leader = self.metadata.leader_for(tp)
        if leader is None:
            return
        ps = self._state(tp)
        room = self._max_batches - len(ps.inflight)
        if ps.inflight and (not self.idempotent or ps.confirmed_epoch != self.producer_epoch
                            or ps.inflight[-1].attempts > 1):
            return
        batches = self.accumulator.drain(tp, now, room, self.config.max_request_size)
        if not batches:
            return
        for batch in batches:
            if self.idempotent:
                if batch.base_sequence < 0:
                    sequence = ps.next_sequence
                    ps.next_sequence = (sequence + batch.record_count) & 0x7FFFFFFF
                else:
                    sequence = batch.base_sequence
                batch.build(self.producer_id, self.producer_epoch, sequence)
            else:
                batch.build(NO_PRODUCER_ID, -1, -1)
            batch.attempts += 1
            batch.sent = True
            ps.inflight.append(batch)
        address = leader[1]
        self.stats["requests"] += 1
        self.stats["batches_sent"] += len(batches)
        self.node_inflight[address] = self.node_inflight.get(address, 0) + 1
        task = asyncio.ensure_future(self._produce(tp, address, batches))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _produce(self, tp: TopicPartition, address: str, batches: list[ProducerBatch]) -> None:
        ps = self._state(tp)
        request = broker_pb2.ProduceRequest(
            topic=tp.topic, partition=tp.partition,
            records=b"".join(b.data for b in batches if b.data is not None),
            acks=self.config.required_acks,
            timeout_ms=max(1, int(self.config.request_timeout_ms * 0.9)),
        )
        try:
            response = await self.pool.call(address, "broker", "Produce", request, self._request_timeout_s)
        except BrokerResponseError as exc:
            self._on_error(tp, ps, batches, exc)
        except asyncio.CancelledError:
            error: KafkaException = KafkaTimeoutError(
                f"producer closed while a request to {address} for {tp.topic}-{tp.partition} was in flight;"
                " the record may or may not have been written"
            )
            for batch in batches:
                ps.outcomes[batch] = (FAIL, error)
        except Exception as exc:  # noqa: BLE001 - a bug must fail the batches, not hang them
            logger.exception("produce request failed unexpectedly", topic=tp.topic, partition=tp.partition)
            error = UnknownServerError(f"Produce to {address}: {type(exc).__name__}: {exc}")
            for batch in batches:
                ps.outcomes[batch] = (FAIL, error)
        else:
            offsets = list(response.batch_base_offsets)
            for i, batch in enumerate(batches):
                if i < len(offsets):
                    offset = offsets[i]
                else:
                    offset = response.base_offset if i == 0 else -1
                ps.outcomes[batch] = (OK, offset)
        finally:
            self.node_inflight[address] = self.node_inflight.get(address, 1) - 1
            self._settle(tp, ps)
            self.wakeup.set()

    def _on_error(self, tp: TopicPartition, ps: PartitionState, batches: list[ProducerBatch],
                  error: BrokerResponseError) -> None:
        code = error.code
        self.stats["request_errors"] += 1
        logger.debug("produce failed", topic=tp.topic, partition=tp.partition, error=str(error),
                  batches=len(batches), first_sequence=batches[0].base_sequence)
        if code in _LEADER_MOVED:
            if code == ErrorCode.NOT_LEADER_OR_FOLLOWER and error.leader_id > 0:
                self.metadata.leader_moved(tp, error.leader_id)
            else:
                self.metadata.request_update()
        if code in (ErrorCode.RECORD_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE):
            if len(batches) > 1:
                for batch in batches:
                    batch.solo = True
                    ps.outcomes[batch] = (RETRY, error)
            elif batches[0].record_count > 1:
                ps.outcomes[batches[0]] = (SPLIT, error)
            else:
                ps.outcomes[batches[0]] = (FAIL, error)
            return
        head_of_line = not ps.recovering and not ps.to_retry and ps.inflight and ps.inflight[0] is batches[0]
        if code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER and not head_of_line:
            kind = RETRY  # an earlier batch failed: this one follows it back into the queue
        elif code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER or code in _PRODUCER_STATE_LOST:
            kind = FAIL
            if self.idempotent:
                self.need_epoch_bump = True
        elif error.retriable:
            kind = RETRY
        else:
            kind = FAIL
        for batch in batches:
            ps.outcomes[batch] = (kind, error)

    def _settle(self, tp: TopicPartition, ps: PartitionState) -> None:
        """Hand out outcomes in sequence order; start or finish a partition's recovery."""
        while ps.inflight and ps.inflight[0] in ps.outcomes:
            batch = ps.inflight.popleft()
            kind, value = ps.outcomes.pop(batch)
            if kind == OK:
                ps.confirmed_epoch = batch.producer_epoch
                self.stats["records_sent"] += batch.record_count
                self._complete(batch, int(value), None)  # type: ignore[call-overload]
                continue
            ps.recovering = True
            assert isinstance(value, KafkaException)
            batch.last_error = value
            if kind == RETRY:
                self.stats["batches_retried"] += 1
                ps.to_retry.append(batch)
            elif kind == SPLIT:
                self.stats["batches_split"] += 1
                ps.to_retry.extend(self._split(batch))
            else:
                if batch.base_sequence >= 0 and value.code not in _PRODUCER_STATE_LOST and \
                        value.code != ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER and not isinstance(value, KafkaTimeoutError):
                    ps.dropped.append(batch)  # refused, so not written: close the gap behind it
                self._complete(batch, -1, value)
        if ps.recovering and not ps.inflight:
            self._finish_recovery(tp, ps)

    def _finish_recovery(self, tp: TopicPartition, ps: PartitionState) -> None:
        retry = sorted(ps.to_retry, key=lambda b: b.base_sequence)
        ps.to_retry = []
        ps.recovering = False
        if ps.dropped and self.idempotent and not self.need_epoch_bump:
            dropped = sorted(ps.dropped, key=lambda b: b.base_sequence)
            for batch in retry + [b for b in self.accumulator.queued(tp) if b.base_sequence >= 0]:
                shift = sum(d.record_count for d in dropped if d.base_sequence < batch.base_sequence)
                if shift:
                    batch.build(self.producer_id, self.producer_epoch, batch.base_sequence - shift)
            ps.next_sequence -= sum(d.record_count for d in dropped)
        ps.dropped.clear()
        now = time.monotonic()
        for batch in retry:
            if self.force_closed:
                self._complete(batch, -1, ProducerClosedError("producer closed before the record was delivered"))
                continue
            if batch.attempts > self.config.retries:
                self._fail_unresolved(batch, batch.last_error or KafkaTimeoutError("retries exhausted"))
                continue
            # A batch split or sent alone after RECORD_TOO_LARGE goes again at once.
            too_large = batch.last_error is not None and batch.last_error.code in (
                ErrorCode.RECORD_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE)
            batch.retry_at = now if too_large or batch.split_from is not None and batch.attempts == 0 \
                else now + self._backoff(batch.attempts)
        self.accumulator.reenqueue(b for b in retry if not b.result.done)
        self.wakeup.set()

    def _split(self, batch: ProducerBatch) -> list[ProducerBatch]:
        """Halves of a batch the broker found too large, sequences kept contiguous."""
        records = batch.records()
        half = len(records) // 2
        tracker = SplitTracker(batch, [-1] * len(records), [None] * len(records), 2, self._complete_split)
        parts: list[ProducerBatch] = []
        sequence = batch.base_sequence
        for first, chunk in ((0, records[:half]), (half, records[half:])):
            part = ProducerBatch(batch.tp, batch.compression, 1 << 30, batch.created,
                                 self.config.delivery_timeout_ms / 1000, 0)
            part.deadline = batch.deadline
            for timestamp, key, value, headers in chunk:
                part.try_append(timestamp, key, value, headers)
            part.full = True
            part.attempts = batch.attempts
            part.last_error = batch.last_error
            part.split_from = (tracker, first)
            if sequence >= 0:
                part.build(batch.producer_id, batch.producer_epoch, sequence)
                sequence += part.record_count
            else:
                part.build(NO_PRODUCER_ID, -1, -1)
            part.sent = batch.sent
            parts.append(part)
        logger.info("batch too large for the broker: split in two", topic=batch.tp.topic,
                 partition=batch.tp.partition, records=len(records))
        return parts

    # ------------------------------------------------------------------ completion
    def _complete(self, batch: ProducerBatch, offset: int, error: KafkaException | None) -> None:
        if batch.result.done:
            return
        if error is not None:
            self.stats["batches_failed"] += 1
        batch.result.complete(offset, error)
        if batch.split_from is not None:
            tracker, first = batch.split_from
            tracker.part_done(batch, first)
        self.accumulator.finished(batch)

    def _complete_split(self, tracker: SplitTracker) -> None:
        """Every part of a split batch is done: resolve its futures record by record."""
        parent = tracker.parent
        parent.result.complete(-1, None, (tracker.offsets, tracker.errors))
        if parent.split_from is not None:
            outer, first = parent.split_from
            outer.part_done(parent, first)
        self.accumulator.finished(parent)

    def _fail_unresolved(self, batch: ProducerBatch, error: KafkaException) -> None:
        """Fail a batch whose outcome may be unknown (it was sent): with idempotence the
        sequences restart under a new epoch so the batches behind it can go on."""
        if self.idempotent and batch.base_sequence >= 0:
            self.need_epoch_bump = True
        self._complete(batch, -1, error)

    def _expire(self, now: float) -> None:
        expired = self.accumulator.expire(now, keep=lambda b: False)
        for batch in expired:
            cause = f": last error {batch.last_error}" if batch.last_error is not None else ""
            if batch.last_error is None and self.last_pid_error is not None:
                cause = f": could not get a producer id: {self.last_pid_error}"
            elif batch.last_error is None and self.metadata.leader_for(batch.tp) is None:
                cause = ": the partition has no known leader"
            self._fail_unresolved(batch, KafkaTimeoutError(
                f"{batch.record_count} record(s) for {batch.tp.topic}-{batch.tp.partition} expired after"
                f" delivery_timeout_ms={self.config.delivery_timeout_ms} ({batch.attempts} attempt(s)){cause}"
            ))

    async def abort(self, error: KafkaException) -> None:
        """Force close: fail every queued batch with ``error`` and cancel the requests in
        flight (their batches fail with a KafkaTimeoutError saying the outcome is unknown)."""
        self.force_closed = True
        for batch in self.accumulator.remove_all():
            self._complete(batch, -1, error)
        for ps in self.partitions.values():
            for batch in ps.to_retry:
                self._complete(batch, -1, error)
            ps.to_retry = []
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        # A request task cancelled before it started never ran its own bookkeeping:
        # settle everything here; nothing is sent after this.
        for ps in self.partitions.values():
            for batch in list(ps.inflight) + ps.to_retry:
                self._complete(batch, -1, error)
            ps.inflight.clear()
            ps.to_retry = []
            ps.outcomes.clear()
            ps.recovering = False
        self.node_inflight.clear()
        self.wakeup.set()
