"""ProducerIdControlManager: blocks of producer ids for idempotent producers (Kafka's name). Pure."""

from __future__ import annotations

from raftlog.node.controller.result import ControllerResult, Record
from raftlog.node.metadata.image import MetadataImage
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import controller_pb2, metadata_pb2

PRODUCER_ID_BLOCK = 1000  # Kafka's block size for AllocateProducerIds


class ProducerIdControlManager:
    """Hands out disjoint blocks of producer ids; the next free id is in the image."""

    def allocate_producer_ids(
        self, image: MetadataImage, request: controller_pb2.AllocateProducerIdsRequest
    ) -> ControllerResult[controller_pb2.AllocateProducerIdsResponse]:
        broker = image.brokers.get(request.broker_id)
        if broker is None or broker.broker_epoch != request.broker_epoch:
            raise KafkaError(
                ErrorCode.STALE_BROKER_EPOCH,
                f"broker {request.broker_id} epoch {request.broker_epoch} is not current",
            )
        first = image.next_producer_id
        record = Record(
            producer_ids=metadata_pb2.ProducerIdsRecord(
                broker_id=request.broker_id,
                broker_epoch=request.broker_epoch,
                next_producer_id=first + PRODUCER_ID_BLOCK,
            )
        )
        return ControllerResult.of(
            [record], controller_pb2.AllocateProducerIdsResponse(first_producer_id=first, count=PRODUCER_ID_BLOCK)
        )
