"""``AdminClient``: the blocking admin client (runs ``AIOAdminClient`` on a loop thread)."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from raftlog.client.aio_admin import AIOAdminClient
from raftlog.client.loop_thread import LoopThread
from raftlog.client.types import ClusterDescription, NewTopic, QuorumDescription, TopicDescription

T = TypeVar("T")


class AdminClient:
    """Administer a raftlog cluster (kafka-python's KafkaAdminClient shape)::

        admin = AdminClient(bootstrap_servers="localhost:9092")
        admin.create_topics([NewTopic("orders", num_partitions=3, replication_factor=3)])
        print(admin.describe_cluster())
        admin.close()

    The constructor contacts the bootstrap list (NoBrokersAvailable when no node
    answers). Every call is bounded by ``request_timeout_ms`` (or its ``timeout_ms``).
    """

    def __init__(self, config: Mapping[str, Any] | None = None, **configs: Any) -> None:
        self._aio = AIOAdminClient(config, **configs)
        self._thread = LoopThread.shared()
        self._run(self._aio.start())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._thread.run(coro, None, "admin request")

    def create_topics(self, new_topics: Sequence[NewTopic], timeout_ms: int | None = None,
                      validate_only: bool = False) -> dict[str, TopicDescription]:
        """Create topics; see :meth:`AIOAdminClient.create_topics`."""
        return self._run(self._aio.create_topics(new_topics, timeout_ms, validate_only))

    def create_topic(self, name: str, num_partitions: int = 1, replication_factor: int = 1,
                     configs: Mapping[str, str] | None = None, timeout_ms: int | None = None) -> TopicDescription:
        """Create one topic; returns its description."""
        return self._run(self._aio.create_topic(name, num_partitions, replication_factor, configs, timeout_ms))

    def delete_topics(self, topics: Sequence[str], timeout_ms: int | None = None) -> None:
        """Delete topics."""
        self._run(self._aio.delete_topics(topics, timeout_ms))

    def list_topics(self) -> list[str]:
        """Names of every topic, sorted."""
        return self._run(self._aio.list_topics())

    def describe_topic(self, name: str) -> TopicDescription:
        """A topic's id, effective configs and partitions."""
        return self._run(self._aio.describe_topic(name))

    def describe_topics(self, topics: Sequence[str] | None = None) -> list[TopicDescription]:
        """Descriptions of the given topics (all when None)."""
        return self._run(self._aio.describe_topics(topics))

    def alter_topic_configs(self, topic: str, set_configs: Mapping[str, str] | None = None,
                            delete: Sequence[str] = ()) -> dict[str, str]:
        """Set/reset topic configs; returns the effective configs."""
        return self._run(self._aio.alter_topic_configs(topic, set_configs, delete))

    def describe_cluster(self) -> ClusterDescription:
        """Brokers and the active controller."""
        return self._run(self._aio.describe_cluster())

    def describe_quorum(self) -> QuorumDescription:
        """The metadata quorum: leader, epoch, high watermark, voters."""
        return self._run(self._aio.describe_quorum())

    def close(self) -> None:
        """Close the connections and the I/O thread. Idempotent."""
        self._run(self._aio.close())

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
