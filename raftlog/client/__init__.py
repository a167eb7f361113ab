"""raftlog's client SDK: Producer, Consumer and AdminClient, as Kafka users know them.

The blocking classes (``Producer``, ``Consumer``, ``AdminClient``) and the asyncio
ones (``raftlog.aio``: ``AIOProducer``, ``AIOConsumer``, ``AIOAdminClient``) share
one asyncio-native implementation; the blocking ones run it on a private
event-loop thread. The SDK talks gRPC to the nodes and never imports ``node``.
"""

from __future__ import annotations

from raftlog.client.admin import AdminClient
from raftlog.client.aio_admin import AIOAdminClient
from raftlog.client.aio_consumer import AIOConsumer
from raftlog.client.aio_producer import AIOProducer
from raftlog.client.consumer import Consumer
from raftlog.client.errors import *  # noqa: F403 - the error hierarchy is part of the API
from raftlog.client.futures import FutureRecordMetadata
from raftlog.client.partitioner import DefaultPartitioner, murmur2, partition_for_key
from raftlog.client.producer import Producer
from raftlog.client.serializers import (
    BytesDeserializer,
    BytesSerializer,
    Deserializer,
    JsonDeserializer,
    JsonSerializer,
    ProtobufDeserializer,
    ProtobufSerializer,
    Serializer,
    StringDeserializer,
    StringSerializer,
)
from raftlog.client.types import (
    BrokerInfo,
    ClusterDescription,
    ConsumerRecord,
    NewTopic,
    OffsetAndTimestamp,
    PartitionInfo,
    QuorumDescription,
    RecordMetadata,
    TopicDescription,
    TopicPartition,
    VoterInfo,
)

from raftlog.client import errors as _errors

__all__ = [
    "AIOAdminClient",
    "AIOConsumer",
    "AIOProducer",
    "AdminClient",
    "BrokerInfo",
    "BytesDeserializer",
    "BytesSerializer",
    "ClusterDescription",
    "Consumer",
    "ConsumerRecord",
    "DefaultPartitioner",
    "Deserializer",
    "JsonDeserializer",
    "JsonSerializer",
    "NewTopic",
    "OffsetAndTimestamp",
    "PartitionInfo",
    "Producer",
    "ProtobufDeserializer",
    "ProtobufSerializer",
    "QuorumDescription",
    "RecordMetadata",
    "Serializer",
    "StringDeserializer",
    "StringSerializer",
    "TopicDescription",
    "TopicPartition",
    "VoterInfo",
    "murmur2",
    "partition_for_key",
    "FutureRecordMetadata",
]
__all__ += _errors.__all__
