"""``AIOAdminClient``: topics, configs, cluster and quorum administration (asyncio).

Any node answers admin requests (it forwards to the active controller), so a
request goes to a live node and, when that node cannot answer (down, no
controller elected yet), to the next one, with backoff, until
``request_timeout_ms``. The blocking ``AdminClient`` runs this same class on a
loop thread.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any


from raftlog.client.logs import get_logger
from raftlog.client.config import AdminConfig, build_config
from raftlog.client.connection import ConnectionPool
from raftlog.client.errors import BrokerResponseError, IllegalStateError, KafkaTimeoutError, NoBrokersAvailable
from raftlog.client.metadata import MetadataManager
from raftlog.client.types import (
    BrokerInfo,
    ClusterDescription,
    NewTopic,
    PartitionInfo,
    QuorumDescription,
    TopicDescription,
    VoterInfo,
)
from raftlog.errors import ErrorCode
from raftlog.v1 import admin_pb2

logger = get_logger("raftlog.client.admin")

# Another node may answer (or the same one, a moment later).
_TRY_ELSEWHERE = frozenset({
    ErrorCode.NOT_CONTROLLER, ErrorCode.NETWORK_EXCEPTION, ErrorCode.REQUEST_TIMED_OUT,
    ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.BROKER_NOT_AVAILABLE,
})


def _topic_description(message: admin_pb2.TopicDescription) -> TopicDescription:
    return TopicDescription(
        name=message.name,
        topic_id=message.topic_id,
        partitions=tuple(
            PartitionInfo(message.name, p.partition, p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr),
                          p.partition_epoch)
            for p in sorted(message.partitions, key=lambda p: p.partition)
        ),
        configs=dict(message.configs),
    )


class AIOAdminClient:
    """Administer a raftlog cluster from asyncio::

        async with AIOAdminClient(bootstrap_servers="localhost:9092") as admin:
            await admin.create_topics([NewTopic("orders", num_partitions=3, replication_factor=3)])
            print(await admin.list_topics())
    """

    def __init__(self, config: Mapping[str, Any] | None = None, **configs: Any) -> None:
        self.config: AdminConfig = build_config(AdminConfig, config, configs)
        self._pool: ConnectionPool | None = None
        self._metadata: MetadataManager | None = None
        self._rng = random.Random()

    async def start(self) -> None:
        """Connect: learn the brokers from the bootstrap list (NoBrokersAvailable when
        no node answers). Idempotent."""
        if self._pool is None:
            pool = ConnectionPool(self.config.max_message_size)
            metadata = MetadataManager(self.config, pool)
            try:
                await metadata.refresh(self.config.request_timeout_ms / 1000)
            except BaseException:
                await pool.close()
                raise
            self._pool, self._metadata = pool, metadata

    async def close(self) -> None:
        """Close the connections. Idempotent."""
        if self._pool is not None:
            await self._pool.close()

    async def __aenter__(self) -> AIOAdminClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ plumbing
    async def _call(self, method: str, request: Any, timeout_ms: int | None = None) -> Any:
        if self._pool is None or self._metadata is None:
            await self.start()
        pool, metadata = self._pool, self._metadata
        assert pool is not None and metadata is not None
        if pool.closed:
            raise IllegalStateError("the admin client is closed")
        timeout_s = (timeout_ms if timeout_ms is not None else self.config.request_timeout_ms) / 1000
        deadline = time.monotonic() + timeout_s
        delay = self.config.retry_backoff_ms / 1000
        preferred: str | None = None
        last: BrokerResponseError | None = None
        while True:
            live = [b.address for b in metadata.cluster.brokers.values() if not b.fenced and b.port]
            self._rng.shuffle(live)
            candidates = list(dict.fromkeys(([preferred] if preferred else []) + live + metadata.bootstrap))
            for address in candidates:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    return await pool.call(address, "admin", method, request, remaining)
                except BrokerResponseError as exc:
                    if exc.code not in _TRY_ELSEWHERE:
                        raise
                    last = exc
                    preferred = exc.leader_address or None
                    logger.debug("admin request failed; trying another node", method=method, address=address,
                              error=str(exc))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if last is not None and last.code in (ErrorCode.NETWORK_EXCEPTION,):
                    raise NoBrokersAvailable(f"{method}: no node answered within {timeout_s * 1000:.0f} ms: {last}")
                if last is not None:
                    raise last
                raise KafkaTimeoutError(f"{method} did not complete within {timeout_s * 1000:.0f} ms")
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, self.config.retry_backoff_max_ms / 1000)
            await metadata.maybe_refresh()

    # ------------------------------------------------------------------ topics
    async def create_topics(self, new_topics: Sequence[NewTopic], timeout_ms: int | None = None,
                            validate_only: bool = False) -> dict[str, TopicDescription]:
        """Create topics (in order); returns each created topic's description. Raises
        the typed error of the first that fails (TopicAlreadyExistsError,
        InvalidReplicationFactorError, InvalidConfigurationError, ...); the ones before
        it stay created."""
        out: dict[str, TopicDescription] = {}
        for topic in new_topics:
            request = admin_pb2.CreateTopicRequest(
                name=topic.name, partitions=topic.num_partitions, replication_factor=topic.replication_factor,
                configs=dict(topic.topic_configs), validate_only=validate_only,
            )
            response = await self._call("CreateTopic", request, timeout_ms)
            out[topic.name] = _topic_description(response.topic)
        return out

    async def create_topic(self, name: str, num_partitions: int = 1, replication_factor: int = 1,
                           configs: Mapping[str, str] | None = None, timeout_ms: int | None = None) -> TopicDescription:
        """Create one topic; returns its description."""
        created = await self.create_topics([NewTopic(name, num_partitions, replication_factor, dict(configs or {}))],
                                           timeout_ms)
        return created[name]

    async def delete_topics(self, topics: Sequence[str], timeout_ms: int | None = None) -> None:
        """Delete topics (UnknownTopicOrPartitionError for one that does not exist)."""
        for name in topics:
            await self._call("DeleteTopic", admin_pb2.DeleteTopicRequest(name=name), timeout_ms)

    async def list_topics(self) -> list[str]:
        """Names of every topic, sorted."""
        response = await self._call("ListTopics", admin_pb2.ListTopicsRequest())
        return sorted(response.names)

    async def describe_topic(self, name: str) -> TopicDescription:
        """A topic's id, effective configs and partitions (leader, epoch, replicas, ISR)."""
        return _topic_description(await self._call("DescribeTopic", admin_pb2.DescribeTopicRequest(name=name)))

    async def describe_topics(self, topics: Sequence[str] | None = None) -> list[TopicDescription]:
        """Descriptions of the given topics (all topics when None)."""
        names = list(topics) if topics is not None else await self.list_topics()
        return [await self.describe_topic(name) for name in names]

    async def alter_topic_configs(self, topic: str, set_configs: Mapping[str, str] | None = None,
                                  delete: Sequence[str] = ()) -> dict[str, str]:
        """Set and/or reset (``delete``: back to the default) topic configs; returns the
        effective configs after the change. InvalidConfigurationError for a bad name/value."""
        request = admin_pb2.AlterConfigsRequest(
            topic=topic, set={k: str(v) for k, v in (set_configs or {}).items()}, delete=list(delete))
        response = await self._call("AlterConfigs", request)
        return dict(response.configs)

    # ------------------------------------------------------------------ cluster
    async def describe_cluster(self) -> ClusterDescription:
        """The brokers (address, epoch, fenced) and the active controller."""
        response = await self._call("DescribeCluster", admin_pb2.DescribeClusterRequest())
        brokers = []
        for b in response.brokers:
            host, _, port = b.address.rpartition(":")
            brokers.append(BrokerInfo(b.broker_id, host, int(port) if port.isdigit() else 0, b.rack, b.fenced,
                                      b.incarnation_id, b.broker_epoch))
        return ClusterDescription(response.cluster_id, response.controller_id, tuple(brokers),
                                  response.metadata_offset, response.answered_by)

    async def describe_quorum(self) -> QuorumDescription:
        """The metadata quorum as its leader sees it: leader, epoch, high watermark, voters and their lag."""
        response = await self._call("DescribeQuorum", admin_pb2.DescribeQuorumRequest())
        voters = tuple(
            VoterInfo(v.node_id, v.address, v.log_end_offset, v.lag, v.last_fetch_ms_ago, v.status)
            for v in response.voters
        )
        return QuorumDescription(response.leader_id, response.leader_epoch, response.high_watermark, voters,
                                 response.answered_by, response.cluster_id)
