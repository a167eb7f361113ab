"""The storage boundary: a partition log's refusals reach the broker as Kafka errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.broker.replica_log import KafkaErrorsLog
from raftlog.storage.errors import LogOffsetOutOfRangeError
from raftlog.storage.node_db import NodeDB
from raftlog.storage.partition_log import PartitionLog

TOPIC = "AAECAwQFBgcICQoLDA0ODw"


def test_storage_errors_become_kafka_errors_at_the_boundary(tmp_path: Path) -> None:
    async def scenario() -> None:
        with NodeDB.open(tmp_path, sync=False) as db:
            storage = PartitionLog.open(db, TOPIC, 0)
            with pytest.raises(LogOffsetOutOfRangeError):  # storage speaks of offsets...
                storage.read(5, 1 << 20, 1 << 20)
            log = KafkaErrorsLog(storage)
            with pytest.raises(KafkaError) as err:  # ...the broker of Kafka's codes
                log.read(5, 1 << 20, 1 << 20)
            assert err.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
            with pytest.raises(KafkaError) as err:
                await log.delete_before(3)
            assert err.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
            await log.delete()
            with pytest.raises(KafkaError) as err:
                log.read(0, 1 << 20, 1 << 20)
            assert err.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    asyncio.run(scenario())
