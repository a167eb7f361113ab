"""Raft-level errors of the driver, translated to Kafka error codes (one place)."""

from __future__ import annotations

from raftlog.node.quorum.errors import (
    DriverStoppedError,
    InvalidProposalError,
    NotLeaderError,
    QuorumError,
    QuorumTimeoutError,
)
from raftlog.errors import ErrorCode, KafkaError


def controller_error(exc: QuorumError) -> KafkaError:
    """The Kafka error a client sees for a driver error: NOT_CONTROLLER (with the
    leader), REQUEST_TIMED_OUT, BROKER_NOT_AVAILABLE or INVALID_REQUEST."""
    if isinstance(exc, NotLeaderError):
        return KafkaError(
            ErrorCode.NOT_CONTROLLER,
            str(exc) or "this node is not the active controller",
            leader_id=exc.leader_id,
            leader_address=exc.leader_address,
        )
    if isinstance(exc, QuorumTimeoutError):
        return KafkaError(ErrorCode.REQUEST_TIMED_OUT, str(exc))
    if isinstance(exc, DriverStoppedError):
        return KafkaError(ErrorCode.BROKER_NOT_AVAILABLE, str(exc))
    if isinstance(exc, InvalidProposalError):
        return KafkaError(ErrorCode.INVALID_REQUEST, str(exc))
    return KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

