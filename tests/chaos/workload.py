"""The workload: idempotent acks=all producers and consumers over raw gRPC (asyncio).

Deliberately independent of the client SDK (raftlog.client): what is under test is
the cluster, and the producer's retry rules are the checker's assumptions, so they
are spelled out here. ``BatchSender`` is the seam where an SDK-based producer can be
plugged in later: anything that turns a ``BatchOp`` into acked/failed/unknown.

Producer rules (Kafka's idempotent producer, reduced to one batch in flight):
- one InitProducerId per producer; per partition a base sequence that advances only
  when a batch is acknowledged;
- on any retriable or unknown-outcome error the SAME bytes are resent (the leader
  answers a duplicate with its original offset) until acknowledged, or until the
  give-up bound: then the batch is ``failed`` if no attempt can have reached a log,
  else ``unknown``, and that partition's stream bumps its epoch (sequence 0 again).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import build_batch, read_records, split_batches
from raftlog.status import kafka_error_from_rpc
from raftlog.v1 import admin_pb2, admin_pb2_grpc, broker_pb2, broker_pb2_grpc
from tests.chaos.history import ACKED, FAILED, UNKNOWN, BatchOp, History

CHANNEL_OPTIONS = [
    # A restarted node must be dialable again quickly (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
]

#: Errors raised before the leader appends anything: such an attempt wrote nothing.
#: (NOT_LEADER_OR_FOLLOWER is not here: a leader deposed while waiting for the HW
#: answers it after its append.)
NOT_WRITTEN = {ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
               ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, ErrorCode.INVALID_PRODUCER_EPOCH,
               ErrorCode.CORRUPT_MESSAGE, ErrorCode.RECORD_TOO_LARGE}
#: The batch can never be accepted as it is: stop resending it.
FATAL_FOR_BATCH = {ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER, ErrorCode.INVALID_PRODUCER_EPOCH,
                   ErrorCode.UNKNOWN_PRODUCER_ID, ErrorCode.PRODUCER_FENCED, ErrorCode.CORRUPT_MESSAGE,
                   ErrorCode.RECORD_TOO_LARGE, ErrorCode.INVALID_REQUEST}


def _not_connected(err: KafkaError) -> bool:
    """A transport failure that happened before the request left (nothing was sent)."""
    text = err.info.message.lower()
    return err.code == ErrorCode.NETWORK_EXCEPTION and ("failed to connect" in text or "connection refused" in text)


class Rpc:
    """gRPC channels to the nodes, cached per address, and leader lookup by Metadata."""

    def __init__(self, bootstrap: Callable[[], Sequence[str]], topic: str, rng: random.Random) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.rng = rng
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.leaders: dict[int, str] = {}
        self._refresh: asyncio.Task[None] | None = None

    def channel(self, address: str) -> grpc.aio.Channel:
        ch = self.channels.get(address)
        if ch is None:
            ch = self.channels[address] = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        return ch

    def broker(self, address: str) -> Any:
        return broker_pb2_grpc.BrokerStub(self.channel(address))

    def admin(self, address: str) -> Any:
        return admin_pb2_grpc.AdminStub(self.channel(address))

    async def call(self, address: str, method: str, request: Any, timeout_s: float, admin: bool = False) -> Any:
        stub = self.admin(address) if admin else self.broker(address)
        try:
            return await getattr(stub, method)(request, timeout=timeout_s)
        except grpc.RpcError as err:
            raise kafka_error_from_rpc(err) from None

    async def any_node(self, method: str, request: Any, timeout_s: float = 1.0, admin: bool = False) -> Any:
        addresses = list(self.bootstrap())
        self.rng.shuffle(addresses)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.call(address, method, request, timeout_s, admin)
            except KafkaError as err:
                last = err
        raise last or KafkaError(ErrorCode.NETWORK_EXCEPTION, "no node to ask")

    async def refresh(self) -> None:
        """One Metadata call at a time, shared by everyone who needs leaders."""
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.get_running_loop().create_task(self._do_refresh())
        await asyncio.shield(self._refresh)

    async def _do_refresh(self) -> None:
        try:
            md = await self.any_node("Metadata", broker_pb2.MetadataRequest(topics=[self.topic]), 1.0)
        except KafkaError:
            return
        hosts = {b.broker_id: f"{b.host}:{b.port}" for b in md.brokers}
        for t in md.topics:
            for p in t.partitions:
                if p.leader in hosts:
                    self.leaders[p.partition] = hosts[p.leader]
                else:
                    self.leaders.pop(p.partition, None)

    async def leader(self, partition: int) -> str | None:
        if partition not in self.leaders:
            await self.refresh()
        return self.leaders.get(partition)

    def forget(self, partition: int, address: str | None, hint: str = "") -> None:
        if hint:
            self.leaders[partition] = hint
        elif address is None or self.leaders.get(partition) == address:
            self.leaders.pop(partition, None)

    async def close(self) -> None:
        for ch in self.channels.values():
            await ch.close()
        self.channels.clear()


class BatchSender(Protocol):
    """Writes one batch and settles ``op`` (status, offset, t_done). The seam for an
    SDK-based producer."""

    async def send(self, op: BatchOp, give_up_at: float) -> None: ...


@dataclass
class _Stream:
    producer_epoch: int = 0
    next_sequence: int = 0


class RawIdempotentProducer:
    """One producer id, one sequence per partition, one batch in flight per partition."""

    def __init__(self, rpc: Rpc, history: History, attempt_timeout_s: float = 4.0) -> None:
        self.rpc = rpc
        self.history = history
        self.attempt_timeout_s = attempt_timeout_s
        self.producer_id = -1
        self.streams: dict[int, _Stream] = {}

    async def init(self, deadline: float) -> None:
        while True:
            try:
                resp = await self.rpc.any_node("InitProducerId", broker_pb2.InitProducerIdRequest(
                    producer_id=-1, producer_epoch=-1), 3.0)
                self.producer_id = resp.producer_id
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _bump_epoch(self, stream: _Stream) -> None:
        """After a give-up: KIP-360's epoch bump restarts this partition at sequence 0."""
        for _ in range(50):
            try:
                resp = await self.rpc.any_node("InitProducerId", broker_pb2.InitProducerIdRequest(
                    producer_id=self.producer_id, producer_epoch=stream.producer_epoch), 3.0)
            except KafkaError:
                await asyncio.sleep(0.2)
                continue
            if resp.producer_id != self.producer_id:  # epoch exhausted: a fresh id
                self.producer_id = resp.producer_id
            stream.producer_epoch, stream.next_sequence = resp.producer_epoch, 0
            return
        raise RuntimeError("could not bump the producer epoch")

    async def send(self, op: BatchOp, give_up_at: float) -> None:
        stream = self.streams.setdefault(op.partition, _Stream())
        data = build_batch([(None, v) for v in op.values()], producer_id=self.producer_id,
                           producer_epoch=stream.producer_epoch, base_sequence=stream.next_sequence)
        request = broker_pb2.ProduceRequest(topic=self.rpc.topic, partition=op.partition, records=data, acks=-1,
                                            timeout_ms=int(self.attempt_timeout_s * 1000))
        maybe_written = False
        backoff = 0.02
        op.t_sent = time.monotonic()
        while True:
            address = await self.rpc.leader(op.partition)
            op.attempts += 1
            try:
                if address is None:
                    raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, f"partition {op.partition} has no leader")
                resp = await self.rpc.call(address, "Produce", request, self.attempt_timeout_s + 1.0)
                op.status, op.offset, op.t_done, op.acked_by = ACKED, resp.base_offset, time.monotonic(), address
                stream.next_sequence += op.count
                return
            except KafkaError as err:
                op.last_error = f"{err.code.name}: {err.info.message[:160]}"
                self.history.count_error(self.history.producer_errors, err.code.name)
                if not (err.code in NOT_WRITTEN or _not_connected(err)):
                    maybe_written = True
                fatal = err.code in FATAL_FOR_BATCH
                if err.code == ErrorCode.NOT_LEADER_OR_FOLLOWER or address is None or not fatal:
                    self.rpc.forget(op.partition, address, err.info.leader_address)
                if fatal or time.monotonic() >= give_up_at:
                    op.status = UNKNOWN if maybe_written else FAILED
                    op.t_done = time.monotonic()
                    await self._bump_epoch(stream)
                    return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.25)


class Workload:
    """``producers`` producers, each writing batches of 1-3 records to every partition
    at ``rate`` batches/s in all; ``consumers`` consumers splitting the partitions,
    reading everything below the HW from offset 0, continuously."""

    def __init__(self, bootstrap: Callable[[], Sequence[str]], topic: str, partitions: int, producers: int,
                 consumers: int, seed: int, rate: float = 20.0, give_up_s: float = 30.0,
                 make_sender: Callable[[Rpc, History], BatchSender] | None = None) -> None:
        self.topic = topic
        self.partitions = partitions
        self.n_producers = producers
        self.n_consumers = consumers
        self.rate = rate
        self.give_up_s = give_up_s
        self.seed = seed
        self.history = History()
        self.rpc = Rpc(bootstrap, topic, random.Random(seed ^ 0x5EED))
        self.make_sender = make_sender or (lambda rpc, history: RawIdempotentProducer(rpc, history))
        self._stop_producing = asyncio.Event()
        self._stop_consuming = asyncio.Event()
        self._producer_tasks: list[asyncio.Task[None]] = []
        self._consumer_tasks: list[asyncio.Task[None]] = []
        self.positions: dict[int, int] = {p: 0 for p in range(partitions)}

    async def start(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        loop = asyncio.get_running_loop()
        for producer in range(self.n_producers):
            sender = self.make_sender(self.rpc, self.history)
            if isinstance(sender, RawIdempotentProducer):
                await sender.init(deadline)
            for partition in range(self.partitions):
                rng = random.Random(f"{self.seed}-{producer}-{partition}")
                self._producer_tasks.append(loop.create_task(
                    self._produce(sender, producer, partition, rng), name=f"producer-{producer}-{partition}"))
        for partition in range(self.partitions):
            self.history.consumed[partition] = []
            self._consumer_tasks.append(loop.create_task(
                self._consume(partition), name=f"consumer-{partition % max(1, self.n_consumers)}-{partition}"))

    async def _produce(self, sender: BatchSender, producer: int, partition: int, rng: random.Random) -> None:
        interval = self.partitions / self.rate  # per stream, so that each producer writes `rate` batches/s
        seq = 0
        await asyncio.sleep(rng.uniform(0, interval))
        while not self._stop_producing.is_set():
            started = time.monotonic()
            op = BatchOp(producer, partition, seq, rng.randint(1, 3))
            self.history.ops.append(op)
            seq += op.count
            await sender.send(op, started + self.give_up_s)
            pause = interval - (time.monotonic() - started)
            if pause > 0:
                try:
                    await asyncio.wait_for(self._stop_producing.wait(), pause * rng.uniform(0.5, 1.5))
                except TimeoutError:
                    pass

    async def _consume(self, partition: int) -> None:
        reads = self.history.consumed[partition]
        while not self._stop_consuming.is_set():
            address = await self.rpc.leader(partition)
            try:
                if address is None:
                    raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, "no leader")
                resp = await self.rpc.call(address, "Fetch", broker_pb2.FetchRequest(
                    topic=self.topic, partition=partition, offset=self.positions[partition], max_bytes=1 << 20,
                    max_wait_ms=200, min_bytes=1, current_leader_epoch=-1), 3.0)
            except KafkaError as err:
                self.history.count_error(self.history.consumer_errors, err.code.name)
                self.rpc.forget(partition, address, err.info.leader_address)
                await asyncio.sleep(0.05)
                continue
            position = self.positions[partition]
            for _, batch in split_batches(resp.records):
                for r in read_records(batch):
                    if r.offset >= position:
                        reads.append((r.offset, r.value or b""))
                        position = r.offset + 1
            self.positions[partition] = position

    async def stop_producers(self, timeout_s: float) -> None:
        """Stop starting batches; let each in-flight batch settle (bounded by give-up)."""
        self._stop_producing.set()
        done, pending = await asyncio.wait(self._producer_tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"producer task {task.get_name()} crashed") from task.exception()
        for op in self.history.ops:
            if op.status not in (ACKED, FAILED):
                op.status = UNKNOWN

    async def stop_consumers(self) -> None:
        self._stop_consuming.set()
        done, pending = await asyncio.wait(self._consumer_tasks, timeout=5.0)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"consumer task {task.get_name()} crashed") from task.exception()

    def crashed(self) -> str | None:
        """A workload task that died of an exception (a bug in the runner, not the cluster)."""
        for task in self._producer_tasks + self._consumer_tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                return f"{task.get_name()}: {task.exception()!r}"
        return None

    def acknowledged(self) -> int:
        return sum(op.count for op in self.history.ops if op.status == ACKED)

    async def close(self) -> None:
        await self.rpc.close()


async def describe_topic(rpc: Rpc, topic: str) -> admin_pb2.TopicDescription | None:
    try:
        desc: admin_pb2.TopicDescription = await rpc.any_node(
            "DescribeTopic", admin_pb2.DescribeTopicRequest(name=topic), 2.0, admin=True)
        return desc
    except KafkaError:
        return None

