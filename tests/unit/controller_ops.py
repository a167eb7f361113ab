"""The pure controller operations as record-list functions, for tests that commit
their records straight into a MetadataLoader."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from raftlog.node.controller.cluster_control import ClusterControlManager
from raftlog.node.controller.result import Record
from raftlog.node.metadata.image import MetadataImage
from raftlog.v1 import admin_pb2, controller_pb2

CLUSTER = ClusterControlManager()
REPLICATION = CLUSTER.replication
CONFIGURATION = REPLICATION.configs


def register_broker(image: MetadataImage, request: controller_pb2.RegisterBrokerRequest) -> list[Record]:
    return list(CLUSTER.register_broker(image, request, image.offset + 1).records)


def fence_broker(image: MetadataImage, broker_id: int) -> list[Record]:
    return list(CLUSTER.fence_broker(image, broker_id).records)


def unfence_broker(image: MetadataImage, broker_id: int) -> list[Record]:
    return list(CLUSTER.unfence_broker(image, broker_id).records)


def create_topic(
    image: MetadataImage, name: str, partitions: int, rf: int, configs: Mapping[str, str], topic_id: str
) -> list[Record]:
    request = admin_pb2.CreateTopicRequest(name=name, partitions=partitions, replication_factor=rf, configs=configs)
    return list(REPLICATION.create_topic(image, request, topic_id).records)


def delete_topic(image: MetadataImage, name: str) -> list[Record]:
    return list(REPLICATION.delete_topic(image, name).records)


def alter_configs(image: MetadataImage, name: str, set_configs: Mapping[str, str], delete: Sequence[str]) -> list[Record]:
    request = admin_pb2.AlterConfigsRequest(topic=name, set=set_configs, delete=delete)
    return list(CONFIGURATION.alter_configs(image, request).records)


def alter_partition(
    image: MetadataImage, broker_id: int, broker_epoch: int, topic_id: str, partition_id: int,
    leader_epoch: int, partition_epoch: int, new_isr: Sequence[int],
) -> list[Record]:
    """One AlterPartition item; raises its error as a KafkaError."""
    from raftlog.errors import KafkaError
    from raftlog.status import error_info_from_pb

    request = controller_pb2.AlterPartitionRequest(
        broker_id=broker_id, broker_epoch=broker_epoch,
        partitions=[controller_pb2.AlterPartitionItem(
            topic_id=topic_id, partition=partition_id, leader_epoch=leader_epoch,
            partition_epoch=partition_epoch, new_isr=new_isr)],
    )
    result = REPLICATION.alter_partition(image, request)
    item = result.response.partitions[0]
    if item.HasField("error"):
        info = error_info_from_pb(item.error)
        raise KafkaError(info.code, info.message)
    return list(result.records)
