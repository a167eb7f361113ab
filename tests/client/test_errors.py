"""The SDK's exception classes: one per Kafka error code, with ``retriable``."""

from __future__ import annotations

import grpc
import pytest
from grpc_status import rpc_status

from raftlog.client import errors
from raftlog.errors import RETRIABLE, ErrorCode, ErrorInfo, KafkaError
from raftlog.status import to_rpc_status


@pytest.mark.parametrize("code", [c for c in ErrorCode if c is not ErrorCode.NONE])
def test_every_error_code_has_a_class(code: ErrorCode) -> None:
    cls = errors.error_class(code)
    assert cls.code == code and cls is not errors.BrokerResponseError
    assert cls.retriable == (code in RETRIABLE)
    error = cls("something broke")
    assert isinstance(error, errors.KafkaException) and isinstance(error, KafkaError)
    assert str(error) == f"{code.name}: something broke"
    assert cls.__name__ in errors.__all__


def test_kafka_names_and_aliases() -> None:
    assert errors.error_class(6) is errors.NotLeaderOrFollowerError
    assert errors.MessageSizeTooLargeError is errors.RecordTooLargeError
    assert errors.error_class(12345) is errors.UnknownServerError
    assert errors.KafkaTimeoutError.retriable and errors.NoBrokersAvailable.retriable
    assert issubclass(errors.ProducerClosedError, errors.IllegalStateError)
    assert not errors.SerializationError("x").retriable


class FakeRpcError(grpc.RpcError):
    def __init__(self, status: grpc.Status | None, code: grpc.StatusCode, details: str) -> None:
        self._status, self._code, self._details = status, code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:  # type: ignore[override]
        return () if self._status is None else tuple(self._status.trailing_metadata)


def test_from_rpc_error_reads_the_error_info() -> None:
    status = rpc_status.to_status(to_rpc_status(
        ErrorInfo(ErrorCode.NOT_LEADER_OR_FOLLOWER, "not me", leader_id=2, leader_address="h:2")))
    error = errors.from_rpc_error(FakeRpcError(status, status.code, status.details), "Produce to h:1")
    assert isinstance(error, errors.NotLeaderOrFollowerError) and error.retriable
    assert error.leader_id == 2 and error.leader_address == "h:2"
    assert "Produce to h:1" in str(error) and "not me" in str(error)
    unavailable = errors.from_rpc_error(FakeRpcError(None, grpc.StatusCode.UNAVAILABLE, "refused"))
    assert isinstance(unavailable, errors.NetworkExceptionError) and unavailable.retriable
    deadline = errors.from_rpc_error(FakeRpcError(None, grpc.StatusCode.DEADLINE_EXCEEDED, ""))
    assert isinstance(deadline, errors.RequestTimedOutError)
    wrapped = errors.from_kafka_error(KafkaError(ErrorCode.RECORD_TOO_LARGE, "big"))
    assert isinstance(wrapped, errors.RecordTooLargeError) and not wrapped.retriable
