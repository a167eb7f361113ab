"""The active controller's side of AlterPartition and AllocateProducerIds.

Partition leaders ask to change their ISR; brokers ask for blocks of producer ids.
Both are decisions: validated against the complete image, committed as records,
answered from the image that holds them.
"""

from __future__ import annotations

from typing import Any

from raftlog.node.controller.active import ActiveController
from raftlog.node.controller import partitions
from raftlog.node.metadata.image import MetadataImage
from raftlog.node.api.grpc.forwarding import LeaderRouter, forward_to
from raftlog.errors import ErrorCode, ErrorInfo, KafkaError
from raftlog.v1 import controller_pb2, controller_pb2_grpc, errors_pb2, metadata_pb2

PRODUCER_ID_BLOCK = 1000  # Kafka's block size for AllocateProducerIds


def _error(info: ErrorInfo) -> errors_pb2.ErrorInfo:
    return errors_pb2.ErrorInfo(
        error_code=int(info.code), error_name=info.code.name, message=info.message, retriable=info.retriable
    )


class PartitionControl:
    def __init__(self, controller: ActiveController, router: LeaderRouter) -> None:
        self.controller = controller
        self.router = router

    async def alter_partition(
        self, request: controller_pb2.AlterPartitionRequest, context: Any, timeout_s: float
    ) -> controller_pb2.AlterPartitionResponse:
        async def local(timeout: float) -> controller_pb2.AlterPartitionResponse:
            refused: dict[tuple[str, int], ErrorInfo] = {}

            def decide(image: MetadataImage) -> list[metadata_pb2.MetadataRecord]:
                records: list[metadata_pb2.MetadataRecord] = []
                refused.clear()
                for item in request.partitions:
                    try:
                        records += partitions.alter_partition(
                            image, request.broker_id, request.broker_epoch, item.topic_id, item.partition,
                            item.leader_epoch, item.partition_epoch, list(item.new_isr),
                        )
                    except KafkaError as exc:  # one refusal does not fail the others
                        refused[(item.topic_id, item.partition)] = exc.info
                return records

            image, _ = await self.controller.decide(decide, timeout)
            response = controller_pb2.AlterPartitionResponse()
            for item in request.partitions:
                result = response.partitions.add(topic_id=item.topic_id, partition=item.partition)
                error = refused.get((item.topic_id, item.partition))
                if error is not None:
                    result.error.CopyFrom(_error(error))
                topic = image.topics.get(item.topic_id)
                part = None if topic is None else topic.partitions.get(item.partition)
                if part is not None:
                    result.leader = part.leader
                    result.leader_epoch = part.leader_epoch
                    result.isr.extend(part.isr)
                    result.partition_epoch = part.partition_epoch
            return response

        result: controller_pb2.AlterPartitionResponse = await self.router.route(
            context, timeout_s, local, forward_to(controller_pb2_grpc.ControllerStub, "AlterPartition", request)
        )
        return result

    async def allocate_producer_ids(
        self, request: controller_pb2.AllocateProducerIdsRequest, context: Any, timeout_s: float
    ) -> controller_pb2.AllocateProducerIdsResponse:
        async def local(timeout: float) -> controller_pb2.AllocateProducerIdsResponse:
            first: list[int] = []

            def decide(image: MetadataImage) -> list[metadata_pb2.MetadataRecord]:
                broker = image.brokers.get(request.broker_id)
                if broker is None or broker.broker_epoch != request.broker_epoch:
                    raise KafkaError(
                        ErrorCode.STALE_BROKER_EPOCH,
                        f"broker {request.broker_id} epoch {request.broker_epoch} is not current",
                    )
                first[:] = [image.next_producer_id]
                return [
                    metadata_pb2.MetadataRecord(
                        producer_ids=metadata_pb2.ProducerIdsRecord(
                            broker_id=request.broker_id,
                            broker_epoch=request.broker_epoch,
                            next_producer_id=image.next_producer_id + PRODUCER_ID_BLOCK,
                        )
                    )
                ]

            await self.controller.decide(decide, timeout)
            return controller_pb2.AllocateProducerIdsResponse(first_producer_id=first[0], count=PRODUCER_ID_BLOCK)

        result: controller_pb2.AllocateProducerIdsResponse = await self.router.route(
            context, timeout_s, local,
            forward_to(controller_pb2_grpc.ControllerStub, "AllocateProducerIds", request),
        )
        return result


class NodeControllerClient:
    """The broker's ``ControllerClient``: its requests go to the active controller."""

    def __init__(self, control: PartitionControl) -> None:
        self.control = control

    async def alter_partition(
        self, request: controller_pb2.AlterPartitionRequest, timeout: float
    ) -> controller_pb2.AlterPartitionResponse:
        return await self.control.alter_partition(request, None, timeout)

    async def allocate_producer_ids(
        self, request: controller_pb2.AllocateProducerIdsRequest, timeout: float
    ) -> controller_pb2.AllocateProducerIdsResponse:
        return await self.control.allocate_producer_ids(request, None, timeout)
