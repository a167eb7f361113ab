"""KIP-207: a new leader whose HW has not reached the start of its own epoch (its
predecessor's HW may be higher) answers ListOffsets LATEST, and timestamp lookups
that find a record only above its HW, with OFFSET_NOT_AVAILABLE (retriable)
instead of an end offset that moves backwards."""

from __future__ import annotations

import pytest

from raftlog.client import errors as client_errors
from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.broker.clients import grpc_peer_factory
from raftlog.node.broker.replica_manager import LATEST_TIMESTAMP, ReplicaManager
from raftlog.records import build_batch, read_header, stamp
from tests.broker.fake_log import MemoryPartitionLog
from tests.broker.harness import FAST, FakeController, poll, run


def test_new_leader_below_its_epoch_start_answers_offset_not_available() -> None:
    async def scenario() -> None:
        # A replica that holds offsets 0-2 but heard only HW 1 from its old leader.
        log = MemoryPartitionLog("tid", 0)
        data = stamp(build_batch([(None, b"a", 1_000), (None, b"b", 1_000), (None, b"c", 1_000)]), 0, 0)
        await log.append([(read_header(data), data)], 0)
        await log.checkpoint_high_watermark(1)
        controller = FakeController()
        rm = ReplicaManager(1, None, FAST, grpc_peer_factory, controller,  # type: ignore[arg-type]
                            log_factory=lambda db, topic_id, pid: log, stored_partitions=lambda db: [])
        controller.brokers[1] = rm
        for broker in (1, 2, 3):
            controller.register(broker, 9000 + broker)
            controller.unfence(broker)
        controller.create_topic("t", [[1, 2, 3]])
        p = rm.partition("t", 0)
        await poll(lambda: p.leader_epoch_start_offset == 3, what="epoch start")
        assert p.high_watermark == 1
        with pytest.raises(KafkaError) as err:
            rm.list_offsets("t", 0, LATEST_TIMESTAMP)
        assert err.value.code == ErrorCode.OFFSET_NOT_AVAILABLE
        with pytest.raises(KafkaError) as err:
            rm.list_offsets("t", 0, 500)  # found only above the HW
        assert err.value.code == ErrorCode.OFFSET_NOT_AVAILABLE
        assert rm.list_offsets("t", 0, 5_000).offset == -1  # nothing at all: no error
        # Once the ISR has the epoch's start, the HW passes it: answers again.
        p.update_follower_fetch_state(2, 3, -1)
        p.update_follower_fetch_state(3, 3, -1)
        assert p.high_watermark == 3
        assert rm.list_offsets("t", 0, LATEST_TIMESTAMP).offset == 3
        assert (rm.list_offsets("t", 0, 500).offset, rm.list_offsets("t", 0, 500).timestamp) == (0, 1_000)
        await rm.stop()

    run(scenario())


def test_sdk_retries_offset_not_available() -> None:
    assert client_errors.error_class(ErrorCode.OFFSET_NOT_AVAILABLE).retriable
