"""Producer state after a follower truncation is rebuilt from the log: a producer
whose last five batches were cut is not forgotten (a forgotten producer is accepted
at any sequence, which would let a gap in)."""

from __future__ import annotations

import pytest

from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.broker.partition import Partition, Transition, validate_produce
from raftlog.node.metadata.image import PartitionRegistration
from raftlog.records import read_header, stamp
from raftlog.topic_config import TopicConfig
from tests.broker.fake_log import MemoryPartitionLog
from tests.broker.harness import batch, run
from tests.broker.test_partition_unit import LIVE

PID = 7


def test_truncation_that_removes_a_producers_last_batches_rebuilds_its_state() -> None:
    async def scenario() -> None:
        p = Partition(1, "t", "tid", 0, MemoryPartitionLog("tid", 0), replica_lag_time_max_ms=1000)
        reg = PartitionRegistration((1, 2, 3), (1, 2, 3), 2, 1, 1)
        assert p.apply_metadata(reg, TopicConfig.of({}), LIVE, "") is Transition.BECAME_FOLLOWER
        p.producer_state.built_to = 0  # as built by the manager's scan of the empty log
        # The leader replicated ten batches of producer 7, sequences 0-9 at offsets 0-9.
        fetched = []
        for seq in range(10):
            data = stamp(batch([b"v"], producer_id=PID, producer_epoch=0, base_sequence=seq), seq, 1)
            fetched.append((read_header(data), data))
        assert await p.append_as_follower(fetched, p.follower_generation, 0)
        # A new leader had only 0-4: the last five batches (all it remembers) go.
        assert await p.truncate_to(5, p.follower_generation)
        assert p.log_end_offset == 5
        # This replica leads now; producer 7 retries a later batch: a gap.
        reg = PartitionRegistration((1, 2, 3), (1, 2, 3), 1, 2, 2)
        assert p.apply_metadata(reg, TopicConfig.of({}), LIVE, "") is Transition.BECAME_LEADER
        with pytest.raises(KafkaError) as err:
            await p.append_as_leader(validate_produce(
                batch([b"v"], producer_id=PID, producer_epoch=0, base_sequence=7), 1 << 20), 1)
        assert err.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert [b.last_seq for b in p.producer_state.producers[PID].batches] == [0, 1, 2, 3, 4]
        result = await p.append_as_leader(validate_produce(
            batch([b"v"], producer_id=PID, producer_epoch=0, base_sequence=5), 1 << 20), 1)
        assert result.base_offset == 5

    run(scenario())
