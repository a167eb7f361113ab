"""In-process brokers on real gRPC servers (127.0.0.1, port 0), each with its own
NodeDB, fed metadata by a fake controller that uses the real decision functions
(``node.controller``'s ClusterControlManager and ReplicationControlManager) and the real ``MetadataLoader``, committing instantly.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc
import grpc.aio

from raftlog.node.broker.clients import grpc_peer_factory
from raftlog.node.broker.config import BrokerConfig
from raftlog.node.broker.replica_manager import LogFactory, ReplicaManager
from raftlog.node.controller.cluster_control import ClusterControlManager
from raftlog.node.metadata.image import MetadataImage
from raftlog.node.metadata.loader import MetadataLoader
from raftlog.node.controller.replication_control import new_topic_id
from raftlog.node.api.grpc.broker import BrokerService
from raftlog.node.api.grpc.replication import ReplicationService
from raftlog.errors import ErrorCode, KafkaError
from raftlog.raft.types import Entry
from raftlog.records import build_batch
from raftlog.status import kafka_error_from_rpc
from raftlog.storage.node_db import NodeDB
from raftlog.v1 import (
    broker_pb2,
    broker_pb2_grpc,
    controller_pb2,
    metadata_pb2,
    replication_pb2_grpc,
)

T = TypeVar("T")
Record = metadata_pb2.MetadataRecord

FAST = BrokerConfig(
    replica_lag_time_max_ms=600,
    replica_fetch_wait_max_ms=200,
    replica_fetch_backoff_ms=50,
    replica_socket_timeout_ms=3000,
    replica_high_watermark_checkpoint_interval_ms=200,
    retention_check_interval_ms=200,
    produce_timeout_ms=5000,
    alter_partition_timeout_ms=2000,
)


def run(coro: Awaitable[T], timeout_s: float = 30.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout_s)

    return asyncio.run(bounded())


async def poll(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.01)


def batch(values: Sequence[bytes], **kwargs: Any) -> bytes:
    records: list[tuple[bytes | None, bytes | None]] = [(None, v) for v in values]
    return build_batch(records, **kwargs)


class FakeController:
    """Commits records at once and pushes each new image to every broker."""

    def __init__(self) -> None:
        self.loader = MetadataLoader(0)
        self.index = 0
        self.brokers: dict[int, ReplicaManager] = {}
        self.cut_off: set[int] = set()
        """Brokers that neither get metadata nor reach the controller."""
        self.alter_calls: list[controller_pb2.AlterPartitionRequest] = []

    @property
    def image(self) -> MetadataImage:
        return self.loader.image

    def commit(self, records: Sequence[Record]) -> MetadataImage:
        entries = []
        for record in records:
            self.index += 1
            entries.append(Entry(term=1, index=self.index, data=record.SerializeToString()))
        image = self.loader.apply_entries(entries)
        self.push()
        return image

    def push(self, broker_id: int | None = None) -> None:
        for bid, rm in self.brokers.items():
            if (broker_id is None or bid == broker_id) and bid not in self.cut_off:
                rm.on_metadata(self.image)

    def register(self, broker_id: int, port: int) -> None:
        self.commit([Record(register_broker=metadata_pb2.RegisterBrokerRecord(
            broker_id=broker_id, incarnation_id=str(uuid.uuid4()),
            endpoints=[metadata_pb2.Endpoint(name="INTERNAL", host="127.0.0.1", port=port)],
        ))])

    def create_topic(self, name: str, assignment: Sequence[Sequence[int]],
                     configs: dict[str, str] | None = None) -> str:
        topic_id = new_topic_id()
        records = [Record(topic=metadata_pb2.TopicRecord(name=name, topic_id=topic_id))]
        for pid, replicas in enumerate(assignment):
            records.append(Record(partition=metadata_pb2.PartitionRecord(
                topic_id=topic_id, partition_id=pid, replicas=replicas, isr=replicas,
                leader=replicas[0], leader_epoch=0, partition_epoch=0,
            )))
        for key, value in (configs or {}).items():
            records.append(Record(config=metadata_pb2.ConfigRecord(resource_name=name, name=key, value=value)))
        self.commit(records)
        return topic_id

    def delete_topic(self, name: str) -> None:
        topic_id = self.image.topic_ids[name]
        self.commit([Record(remove_topic=metadata_pb2.RemoveTopicRecord(topic_id=topic_id))])

    def fence(self, broker_id: int) -> None:
        self.commit(list(ClusterControlManager().fence_broker(self.image, broker_id).records))

    def unfence(self, broker_id: int) -> None:
        self.commit(list(ClusterControlManager().unfence_broker(self.image, broker_id).records))

    # -- the ControllerClient protocol ---------------------------------------
    async def alter_partition(self, request: controller_pb2.AlterPartitionRequest,
                              timeout: float) -> controller_pb2.AlterPartitionResponse:
        if request.broker_id in self.cut_off:
            raise KafkaError(ErrorCode.NETWORK_EXCEPTION, "controller unreachable")
        self.alter_calls.append(request)
        result = ClusterControlManager().replication.alter_partition(self.image, request)
        if result.records:
            self.commit(list(result.records))
        return result.response

    async def allocate_producer_ids(self, request: controller_pb2.AllocateProducerIdsRequest,
                                    timeout: float) -> controller_pb2.AllocateProducerIdsResponse:
        first = self.image.next_producer_id
        self.commit([Record(producer_ids=metadata_pb2.ProducerIdsRecord(
            broker_id=request.broker_id, broker_epoch=request.broker_epoch, next_producer_id=first + 10))])
        return controller_pb2.AllocateProducerIdsResponse(first_producer_id=first, count=10)


class TestBroker:
    __test__ = False

    def __init__(self, broker_id: int, base: Path, controller: FakeController, config: BrokerConfig,
                 log_factory: LogFactory | None) -> None:
        self.broker_id = broker_id
        self.db = NodeDB.open(base / f"broker-{broker_id}")
        self.rm = ReplicaManager(broker_id, self.db, config, grpc_peer_factory, controller,
                                 log_factory=log_factory)
        self.server = grpc.aio.server()
        self.service = BrokerService(broker_id, "test-cluster", self.rm, self.rm.allocate_producer_ids,
                                     lambda: 1)
        broker_pb2_grpc.add_BrokerServicer_to_server(self.service, self.server)
        replication_pb2_grpc.add_ReplicationServicer_to_server(ReplicationService(broker_id, self.rm), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.channel: grpc.aio.Channel | None = None
        self.stub: broker_pb2_grpc.BrokerStub | None = None

    async def start(self) -> None:
        await self.server.start()
        await self.rm.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.stub = broker_pb2_grpc.BrokerStub(self.channel)

    async def stop(self) -> None:
        if self.db.closed:
            return
        await self.rm.stop()
        if self.channel is not None:
            await self.channel.close()
        await self.server.stop(grace=None)
        self.db.close()

    def partition(self, topic: str, pid: int = 0) -> Any:
        return self.rm.partition(topic, pid)


class Cluster:
    def __init__(self, base: Path, size: int = 3, config: BrokerConfig = FAST,
                 log_factory: LogFactory | None = None) -> None:
        self.controller = FakeController()
        self.base, self.config, self.log_factory = base, config, log_factory
        self.brokers = {i: TestBroker(i, base, self.controller, config, log_factory) for i in range(1, size + 1)}

    async def __aenter__(self) -> Cluster:
        for broker in self.brokers.values():
            await broker.start()
            self.controller.brokers[broker.broker_id] = broker.rm
        for broker in self.brokers.values():
            self.controller.register(broker.broker_id, broker.port)
        for broker in self.brokers.values():
            self.controller.unfence(broker.broker_id)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(b.stop() for b in self.brokers.values()), return_exceptions=True)

    async def stop_broker(self, broker_id: int) -> None:
        self.controller.brokers.pop(broker_id, None)
        await self.brokers[broker_id].stop()

    async def restart_broker(self, broker_id: int) -> TestBroker:
        """A new process on the same data dir: new port, new registration (epoch)."""
        old = self.brokers[broker_id]
        broker = TestBroker(broker_id, self.base, self.controller, self.config, self.log_factory)
        self.brokers[broker_id] = broker
        del old
        await broker.start()
        self.controller.brokers[broker_id] = broker.rm
        self.controller.register(broker_id, broker.port)
        return broker

    def __getitem__(self, broker_id: int) -> TestBroker:
        return self.brokers[broker_id]

    def leader_of(self, topic: str, pid: int = 0) -> int:
        topic_id = self.controller.image.topic_ids[topic]
        return self.controller.image.topics[topic_id].partitions[pid].leader

    def isr_of(self, topic: str, pid: int = 0) -> tuple[int, ...]:
        topic_id = self.controller.image.topic_ids[topic]
        return self.controller.image.topics[topic_id].partitions[pid].isr

    async def produce(self, broker_id: int, topic: str, records: bytes, acks: int = -1, pid: int = 0,
                      timeout_ms: int = 0) -> broker_pb2.ProduceResponse:
        stub = self.brokers[broker_id].stub
        assert stub is not None
        try:
            response: broker_pb2.ProduceResponse = await stub.Produce(broker_pb2.ProduceRequest(
                topic=topic, partition=pid, records=records, acks=acks, timeout_ms=timeout_ms), timeout=15)
        except grpc.RpcError as exc:
            raise kafka_error_from_rpc(exc) from None
        return response

    async def fetch(self, broker_id: int, topic: str, offset: int, pid: int = 0, max_wait_ms: int = 0,
                    max_bytes: int = 0, min_bytes: int = 1) -> broker_pb2.FetchResponse:
        stub = self.brokers[broker_id].stub
        assert stub is not None
        try:
            response: broker_pb2.FetchResponse = await stub.Fetch(broker_pb2.FetchRequest(
                topic=topic, partition=pid, offset=offset, max_wait_ms=max_wait_ms, max_bytes=max_bytes,
                min_bytes=min_bytes, current_leader_epoch=-1), timeout=15)
        except grpc.RpcError as exc:
            raise kafka_error_from_rpc(exc) from None
        return response

    async def call(self, broker_id: int, method: str, request: Any) -> Any:
        stub = self.brokers[broker_id].stub
        try:
            return await getattr(stub, method)(request, timeout=15)
        except grpc.RpcError as exc:
            raise kafka_error_from_rpc(exc) from None

    def log_bytes(self, broker_id: int, topic: str, upto: int, pid: int = 0) -> bytes:
        p = self.brokers[broker_id].partition(topic, pid)
        out = b""
        offset = p.log_start_offset
        while offset < upto:
            data = p.log.read(offset, 1 << 20, upto)
            if not data.records:
                break
            out += data.records
            offset = data.next_offset
        return bytes(out)
