"""``raftlog.v1.Broker``: the client data path (Produce, Fetch, ListOffsets,
Metadata, InitProducerId). Thin: protobuf <-> ReplicaManager calls; errors become a
rich status through ``rpc_method`` (KafkaError -> its code, anything else ->
UNKNOWN_SERVER_ERROR, logged)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raftlog.node.broker.producer_ids import AllocateProducerIds, ProducerIdManager
from raftlog.node.broker.replica_manager import ReplicaManager, known_leader_epoch
from raftlog.node.metadata.image import NO_LEADER, MetadataImage, TopicImage
from raftlog.node.logging import get_logger
from raftlog.node.api.grpc.errors import rpc_method
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import broker_pb2, broker_pb2_grpc


def _check_partition(partition: int) -> None:
    if partition < 0:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"partition {partition} is negative")


def metadata_response(
    image: MetadataImage, topics: list[str], cluster_id: str, controller_id: int, listener: str | None = None
) -> broker_pb2.MetadataResponse:
    """Brokers, controller and partitions as the image says (Kafka's Metadata), with
    each broker's address on ``listener``: the one the client came in on."""
    response = broker_pb2.MetadataResponse(cluster_id=cluster_id, controller_id=controller_id)
    for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
        endpoint = broker.endpoint_for(listener)
        response.brokers.append(broker_pb2.BrokerEndpoint(
            broker_id=broker.broker_id,
            host=endpoint.host if endpoint else "",
            port=endpoint.port if endpoint else 0,
            rack=broker.rack,
            fenced=broker.fenced,
        ))
    live = set(image.live_brokers())
    selected: list[tuple[str, TopicImage | None]]
    if topics:
        selected = [(name, image.topic_by_name(name)) for name in dict.fromkeys(topics)]
    else:
        selected = [(t.name, t) for t in sorted(image.topics.values(), key=lambda t: t.name)]
    for name, topic in selected:
        if topic is None:
            response.topics.append(broker_pb2.TopicMetadata(
                name=name, error_code=int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)))
            continue
        meta = broker_pb2.TopicMetadata(name=topic.name, topic_id=topic.topic_id)
        for pid in sorted(topic.partitions):
            reg = topic.partitions[pid]
            meta.partitions.append(broker_pb2.PartitionMetadata(
                partition=pid,
                leader=reg.leader if reg.leader != NO_LEADER else -1,
                leader_epoch=reg.leader_epoch,
                replicas=reg.replicas,
                isr=reg.isr,
                offline_replicas=[b for b in reg.replicas if b not in live],
            ))
        response.topics.append(meta)
    return response


class BrokerService(broker_pb2_grpc.BrokerServicer):
    def __init__(
        self,
        node_id: int,
        cluster_id: str,
        replica_manager: ReplicaManager,
        allocate_producer_ids: AllocateProducerIds,
        controller_id: Callable[[], int],
        listener: str | None = None,
    ) -> None:
        """``allocate_producer_ids``: usually ``replica_manager.allocate_producer_ids``;
        ``controller_id``: the active controller's node id now (0/-1 when unknown)."""
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.replicas = replica_manager
        self.producer_ids = ProducerIdManager(allocate_producer_ids)
        self.controller_id = controller_id
        self.listener = listener
        self.logger = get_logger("broker-service", node_id)

    def _on_listener(self, exc: KafkaError) -> KafkaError:
        """NOT_LEADER_OR_FOLLOWER names the leader at the address of this listener."""
        info = exc.info
        if not info.leader_id or self.listener is None:
            return exc
        broker = self.replicas.image.brokers.get(info.leader_id)
        endpoint = None if broker is None else broker.endpoint_for(self.listener)
        if endpoint is None:
            return exc
        return KafkaError(info.code, info.message, leader_id=info.leader_id, leader_address=endpoint.address)

    @rpc_method
    async def Produce(self, request: broker_pb2.ProduceRequest, context: Any) -> broker_pb2.ProduceResponse:
        _check_partition(request.partition)
        try:
            result = await self.replicas.produce(
                request.topic, request.partition, request.records, request.acks, request.timeout_ms
            )
        except KafkaError as exc:
            raise self._on_listener(exc) from None
        return broker_pb2.ProduceResponse(
            base_offset=result.base_offset,
            log_start_offset=result.log_start_offset,
            log_append_time_ms=-1,
            batch_base_offsets=result.batch_base_offsets,
        )

    @rpc_method
    async def Fetch(self, request: broker_pb2.FetchRequest, context: Any) -> broker_pb2.FetchResponse:
        _check_partition(request.partition)
        max_wait_ms = request.max_wait_ms
        remaining = context.time_remaining() if context is not None else None
        if remaining is not None:
            # Answer (empty) before the caller's deadline instead of letting it expire.
            max_wait_ms = min(max_wait_ms, max(0, int(remaining * 1000) - 50))
        try:
            result = await self.replicas.fetch(
                request.topic, request.partition, request.offset, request.max_bytes, max_wait_ms,
                request.min_bytes, known_leader_epoch(request), request.topic_id,
            )
        except KafkaError as exc:
            raise self._on_listener(exc) from None
        return broker_pb2.FetchResponse(
            records=result.records,
            high_watermark=result.high_watermark,
            log_start_offset=result.log_start_offset,
            log_end_offset=result.log_end_offset,
            leader_epoch=result.leader_epoch,
        )

    @rpc_method
    async def ListOffsets(
        self, request: broker_pb2.ListOffsetsRequest, context: Any
    ) -> broker_pb2.ListOffsetsResponse:
        _check_partition(request.partition)
        try:
            result = self.replicas.list_offsets(request.topic, request.partition, request.timestamp)
        except KafkaError as exc:
            raise self._on_listener(exc) from None
        return broker_pb2.ListOffsetsResponse(
            offset=result.offset, timestamp=result.timestamp, leader_epoch=result.leader_epoch
        )

    @rpc_method
    async def Metadata(self, request: broker_pb2.MetadataRequest, context: Any) -> broker_pb2.MetadataResponse:
        return metadata_response(
            self.replicas.image, list(request.topics), self.cluster_id, self.controller_id(), self.listener
        )

    @rpc_method
    async def InitProducerId(
        self, request: broker_pb2.InitProducerIdRequest, context: Any
    ) -> broker_pb2.InitProducerIdResponse:
        producer_id, epoch = await self.producer_ids.init_producer_id(request.producer_id, request.producer_epoch)
        return broker_pb2.InitProducerIdResponse(producer_id=producer_id, producer_epoch=epoch)
