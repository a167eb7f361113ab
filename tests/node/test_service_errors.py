"""The servicer error policy: KafkaError (or a translated Raft driver error) -> rich
status, anything else -> UNKNOWN_SERVER_ERROR."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import status_pb2

from raftlog.node.logging import get_logger
from raftlog.node.api.grpc.errors import rpc_method
from raftlog.node.quorum.errors import DriverStoppedError, NotLeaderError, QuorumTimeoutError
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import errors_pb2
from tests.node.conftest import run


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self) -> None:
        self.status: grpc.Status | None = None

    async def abort_with_status(self, status: grpc.Status) -> None:
        self.status = status
        raise Aborted()


class Service:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.logger = get_logger("test", 1)

    @rpc_method
    async def Call(self, request: str, context: Any) -> str:
        if self.error is not None:
            raise self.error
        return request.upper()


def _info(status: grpc.Status) -> errors_pb2.ErrorInfo:
    pb = status_pb2.Status.FromString(status.trailing_metadata[0][1])
    info = errors_pb2.ErrorInfo()
    assert pb.details[0].Unpack(info)
    return info


def test_ok_passes_through() -> None:
    assert run(Service(None).Call("x", FakeContext())) == "X"


@pytest.mark.parametrize(
    ("error", "code", "grpc_code"),
    [
        (KafkaError(ErrorCode.NOT_CONTROLLER, "no", leader_id=2, leader_address="h:1"),
         ErrorCode.NOT_CONTROLLER, grpc.StatusCode.FAILED_PRECONDITION),
        # Raft driver errors are translated by the controller's one translation.
        (NotLeaderError("not the leader", leader_id=2, leader_address="h:1"),
         ErrorCode.NOT_CONTROLLER, grpc.StatusCode.FAILED_PRECONDITION),
        (DriverStoppedError(), ErrorCode.BROKER_NOT_AVAILABLE, grpc.StatusCode.UNAVAILABLE),
        (QuorumTimeoutError("slow"), ErrorCode.REQUEST_TIMED_OUT, grpc.StatusCode.DEADLINE_EXCEEDED),
        (ZeroDivisionError("boom"), ErrorCode.UNKNOWN_SERVER_ERROR, grpc.StatusCode.INTERNAL),
    ],
)
def test_errors_become_rich_status(error: Exception, code: ErrorCode, grpc_code: grpc.StatusCode) -> None:
    ctx = FakeContext()
    with pytest.raises(Aborted):
        run(Service(error).Call("x", ctx))
    assert ctx.status is not None and ctx.status.code == grpc_code
    info = _info(ctx.status)
    assert info.error_code == int(code)
    if code == ErrorCode.NOT_CONTROLLER:
        assert (info.leader_id, info.leader_address, info.retriable) == (2, "h:1", True)
