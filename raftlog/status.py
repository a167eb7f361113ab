"""Kafka errors <-> gRPC rich status (google.rpc.Status with a raftlog.v1.ErrorInfo).

Used by node servicers to send and by clients (CLI, SDK) to read errors; lives in
raftlog so that the SDK never has to import node.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from raftlog.errors import ErrorCode, ErrorInfo, KafkaError, grpc_code
from raftlog.v1 import errors_pb2


def error_info_to_pb(error: ErrorInfo | KafkaError) -> errors_pb2.ErrorInfo:
    """The one way an error becomes a ``raftlog.v1.ErrorInfo`` (status details and
    per-item errors inside responses alike)."""
    info = error.info if isinstance(error, KafkaError) else error
    return errors_pb2.ErrorInfo(
        error_code=int(info.code),
        error_name=info.code.name,
        message=info.message,
        retriable=info.retriable,
        leader_id=info.leader_id,
        leader_address=info.leader_address,
    )


def error_info_from_pb(pb: errors_pb2.ErrorInfo) -> ErrorInfo:
    """The one way back: an unknown numeric code reads as UNKNOWN_SERVER_ERROR."""
    try:
        code = ErrorCode(pb.error_code)
    except ValueError:
        code = ErrorCode.UNKNOWN_SERVER_ERROR
    return ErrorInfo(code, pb.message, pb.leader_id, pb.leader_address)


def to_rpc_status(error: ErrorInfo) -> status_pb2.Status:
    detail = any_pb2.Any()
    detail.Pack(error_info_to_pb(error))
    return status_pb2.Status(
        code=grpc_code(error.code).value[0],
        message=f"{error.code.name}: {error.message}",
        details=[detail],
    )


def from_rpc_error(err: grpc.RpcError) -> ErrorInfo:
    """The Kafka error inside a failed call; transport failures map to NETWORK_EXCEPTION
    and deadlines to REQUEST_TIMED_OUT."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type,unused-ignore]
    if status is not None:
        for detail in status.details:
            info = errors_pb2.ErrorInfo()
            if detail.Unpack(info):
                return error_info_from_pb(info)
    code_of = err.code() if hasattr(err, "code") else None
    if code_of == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ErrorInfo(ErrorCode.REQUEST_TIMED_OUT, str(err.details() or "deadline exceeded"))
    if code_of == grpc.StatusCode.UNAVAILABLE:
        return ErrorInfo(ErrorCode.NETWORK_EXCEPTION, str(err.details() or "unavailable"))
    details = err.details() if hasattr(err, "details") else str(err)
    return ErrorInfo(ErrorCode.UNKNOWN_SERVER_ERROR, f"{code_of}: {details}")


def kafka_error_from_rpc(err: grpc.RpcError) -> KafkaError:
    """Build (not raise) the KafkaError for a failed call: ``raise kafka_error_from_rpc(e)``."""
    info = from_rpc_error(err)
    return KafkaError(info.code, info.message, leader_id=info.leader_id,
                      leader_address=info.leader_address)
