"""A consumer whose topic is deleted and re-created under the same name gets a
topic-id error (Kafka's INCONSISTENT_TOPIC_ID / UNKNOWN_TOPIC_ID) instead of silently
reading the new topic (hardening finding 4). Against an in-process broker.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from raftlog.client.aio_consumer import AIOConsumer
from raftlog.client.errors import InconsistentTopicIdError, UnknownTopicIdError
from raftlog.client.types import ConsumerRecord, TopicPartition
from raftlog.node.broker.replica_manager import LogFactory
from raftlog.records import build_batch
from tests.broker.harness import Cluster, poll, run


def test_consumer_of_recreated_topic_gets_topic_id_error(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, size=1, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            await c.produce(1, "t", build_batch([(None, b"old-0"), (None, b"old-1"), (None, b"old-2")]), acks=1)
            tp = TopicPartition("t", 0)
            async with AIOConsumer(bootstrap_servers=f"127.0.0.1:{c[1].port}", auto_offset_reset="earliest",
                                   metadata_max_age_ms=200) as consumer:
                consumer.assign([tp])
                got: list[ConsumerRecord] = []
                deadline = time.monotonic() + 10
                while len(got) < 3 and time.monotonic() < deadline:
                    got += await consumer.poll(timeout_ms=200)
                assert [r.value for r in got] == [b"old-0", b"old-1", b"old-2"]

                c.controller.delete_topic("t")
                c.controller.create_topic("t", [[1]])
                await poll(lambda: c[1].partition("t").is_leader, what="leader of the new t")
                await c.produce(1, "t", build_batch([(None, f"new-{i}".encode()) for i in range(6)]), acks=1)

                error: BaseException | None = None
                later: list[ConsumerRecord] = []
                deadline = time.monotonic() + 15
                while error is None and time.monotonic() < deadline:
                    try:
                        later += await consumer.poll(timeout_ms=200)
                    except Exception as exc:  # noqa: BLE001 - inspected below
                        error = exc
                assert not later, f"read the re-created topic: {[r.value for r in later]}"
                assert isinstance(error, (InconsistentTopicIdError, UnknownTopicIdError)), repr(error)
                assert "t-0" in str(error) or "'t'" in str(error), str(error)
                with pytest.raises((InconsistentTopicIdError, UnknownTopicIdError)):  # sticky
                    await consumer.poll(timeout_ms=100)

    run(scenario(), 60)
