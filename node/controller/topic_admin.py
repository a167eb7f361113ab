"""Topic administration on the active controller: create, delete, list, describe,
alter configs. Writes are decided and committed by the leader; reads are answered
by the leader too, from its complete image, so a describe right after a create
always sees the topic."""

from __future__ import annotations

from typing import Any

from raftlog.node.controller.active import ActiveController
from raftlog.node.controller import topics
from raftlog.node.metadata.image import MetadataImage, TopicImage
from raftlog.node.api.grpc.forwarding import LeaderRouter, forward_to
from raftlog.errors import ErrorCode, KafkaError
from raftlog.topic_config import effective_configs
from raftlog.v1 import admin_pb2, admin_pb2_grpc


def topic_description(image: MetadataImage, topic: TopicImage) -> admin_pb2.TopicDescription:
    return admin_pb2.TopicDescription(
        name=topic.name,
        topic_id=topic.topic_id,
        configs=effective_configs(image.configs.get(topic.name, {})),
        partitions=[
            admin_pb2.PartitionDescription(
                partition=pid,
                leader=part.leader,
                leader_epoch=part.leader_epoch,
                replicas=part.replicas,
                isr=part.isr,
                partition_epoch=part.partition_epoch,
            )
            for pid, part in sorted(topic.partitions.items())
        ],
    )


def _existing(image: MetadataImage, name: str) -> TopicImage:
    topic = image.topic_by_name(name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    return topic


class TopicAdmin:
    def __init__(self, controller: ActiveController, router: LeaderRouter) -> None:
        self.controller = controller
        self.router = router

    async def _on_leader_image(self, timeout_s: float) -> MetadataImage:
        image, _ = await self.controller.decide(lambda image: [], timeout_s)
        return image

    async def create_topic(self, request: admin_pb2.CreateTopicRequest, context: Any, timeout_s: float) -> admin_pb2.CreateTopicResponse:
        async def local(timeout: float) -> admin_pb2.CreateTopicResponse:
            topic_id = topics.new_topic_id()

            def decide(image: MetadataImage) -> list[Any]:
                records = topics.create_topic(
                    image, request.name, request.partitions, request.replication_factor,
                    dict(request.configs), topic_id,
                )
                return [] if request.validate_only else records

            image, _ = await self.controller.decide(decide, timeout)
            topic = image.topic_by_name(request.name)
            if request.validate_only or topic is None:
                return admin_pb2.CreateTopicResponse()
            return admin_pb2.CreateTopicResponse(topic=topic_description(image, topic))

        result: admin_pb2.CreateTopicResponse = await self.router.route(
            context, timeout_s, local, forward_to(admin_pb2_grpc.AdminStub, "CreateTopic", request)
        )
        return result

    async def delete_topic(self, request: admin_pb2.DeleteTopicRequest, context: Any, timeout_s: float) -> admin_pb2.DeleteTopicResponse:
        async def local(timeout: float) -> admin_pb2.DeleteTopicResponse:
            await self.controller.decide(lambda image: topics.delete_topic(image, request.name), timeout)
            return admin_pb2.DeleteTopicResponse()

        result: admin_pb2.DeleteTopicResponse = await self.router.route(
            context, timeout_s, local, forward_to(admin_pb2_grpc.AdminStub, "DeleteTopic", request)
        )
        return result

    async def list_topics(self, request: admin_pb2.ListTopicsRequest, context: Any, timeout_s: float) -> admin_pb2.ListTopicsResponse:
        async def local(timeout: float) -> admin_pb2.ListTopicsResponse:
            image = await self._on_leader_image(timeout)
            return admin_pb2.ListTopicsResponse(names=sorted(image.topic_ids))

        result: admin_pb2.ListTopicsResponse = await self.router.route(
            context, timeout_s, local, forward_to(admin_pb2_grpc.AdminStub, "ListTopics", request)
        )
        return result

    async def describe_topic(self, request: admin_pb2.DescribeTopicRequest, context: Any, timeout_s: float) -> admin_pb2.TopicDescription:
        async def local(timeout: float) -> admin_pb2.TopicDescription:
            image = await self._on_leader_image(timeout)
            return topic_description(image, _existing(image, request.name))

        result: admin_pb2.TopicDescription = await self.router.route(
            context, timeout_s, local, forward_to(admin_pb2_grpc.AdminStub, "DescribeTopic", request)
        )
        return result

    async def alter_configs(self, request: admin_pb2.AlterConfigsRequest, context: Any, timeout_s: float) -> admin_pb2.AlterConfigsResponse:
        async def local(timeout: float) -> admin_pb2.AlterConfigsResponse:
            image, _ = await self.controller.decide(
                lambda image: topics.alter_configs(image, request.topic, dict(request.set), list(request.delete)),
                timeout,
            )
            _existing(image, request.topic)
            return admin_pb2.AlterConfigsResponse(configs=effective_configs(image.configs.get(request.topic, {})))

        result: admin_pb2.AlterConfigsResponse = await self.router.route(
            context, timeout_s, local, forward_to(admin_pb2_grpc.AdminStub, "AlterConfigs", request)
        )
        return result
