"""An unset ``current_leader_epoch`` means "not checked", never epoch 0: a client that
never set it was answered FENCED_LEADER_EPOCH after any leader change (hardening:
API traps). Against in-process brokers over real gRPC."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from raftlog.errors import ErrorCode
from raftlog.node.broker.replica_manager import LogFactory
from raftlog.records import build_batch
from raftlog.status import kafka_error_from_rpc
from raftlog.v1 import broker_pb2
from tests.broker.harness import Cluster, poll, run


def test_fetch_without_a_leader_epoch_is_not_fenced(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, size=2, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader 1")
            await c.produce(1, "t", build_batch([(None, b"a")]), acks=-1)
            c.controller.fence(1)  # leadership moves to 2, at leader epoch 1
            await poll(lambda: c[2].partition("t").is_leader, what="leader 2")
            assert c[2].partition("t").leader_epoch >= 1
            stub = c[2].stub
            assert stub is not None
            unset = broker_pb2.FetchRequest(topic="t", partition=0, offset=0, max_bytes=1 << 20, min_bytes=0)
            assert not unset.HasField("current_leader_epoch")
            response = await stub.Fetch(unset, timeout=10)
            assert response.leader_epoch >= 1
            # An explicit 0 is a real, now stale, epoch: fenced as Kafka does.
            stale = broker_pb2.FetchRequest(topic="t", partition=0, offset=0, max_bytes=1 << 20, min_bytes=0,
                                            current_leader_epoch=0)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Fetch(stale, timeout=10)
            assert kafka_error_from_rpc(info.value).code == ErrorCode.FENCED_LEADER_EPOCH

    run(scenario(), 60)
