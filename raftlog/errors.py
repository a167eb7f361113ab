"""Kafka's error codes, shared by the node and the client SDK.

Errors cross the wire as a gRPC status whose details carry a raftlog.v1.ErrorInfo
with Kafka's numeric code and name, so a client branches on the code, never on text.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import grpc


class ErrorCode(enum.IntEnum):
    """Kafka's protocol error codes (the subset raftlog produces), same numbers."""

    UNKNOWN_SERVER_ERROR = -1
    NONE = 0
    OFFSET_OUT_OF_RANGE = 1
    CORRUPT_MESSAGE = 2
    UNKNOWN_TOPIC_OR_PARTITION = 3
    INVALID_FETCH_SIZE = 4
    LEADER_NOT_AVAILABLE = 5
    NOT_LEADER_OR_FOLLOWER = 6
    REQUEST_TIMED_OUT = 7
    BROKER_NOT_AVAILABLE = 8
    REPLICA_NOT_AVAILABLE = 9
    RECORD_TOO_LARGE = 10  # Kafka's MESSAGE_TOO_LARGE (RecordTooLargeException)
    NETWORK_EXCEPTION = 13
    INVALID_TOPIC = 17  # Kafka's INVALID_TOPIC_EXCEPTION
    RECORD_LIST_TOO_LARGE = 18
    NOT_ENOUGH_REPLICAS = 19
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20
    INVALID_REQUIRED_ACKS = 21
    INVALID_REPLICATION_FACTOR = 38
    INVALID_REQUEST = 42
    TOPIC_ALREADY_EXISTS = 36
    INVALID_PARTITIONS = 37
    NOT_CONTROLLER = 41
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45
    DUPLICATE_SEQUENCE_NUMBER = 46
    INVALID_PRODUCER_EPOCH = 47
    INVALID_CONFIG = 40
    FENCED_LEADER_EPOCH = 74
    UNKNOWN_LEADER_EPOCH = 75
    STALE_BROKER_EPOCH = 77
    INCONSISTENT_CLUSTER_ID = 104
    INCONSISTENT_VOTER_SET = 94
    INVALID_RECORD = 87
    UNKNOWN_TOPIC_ID = 100
    INVALID_UPDATE_VERSION = 95
    INELIGIBLE_REPLICA = 107
    UNKNOWN_PRODUCER_ID = 59
    OPERATION_NOT_ATTEMPTED = 55
    OFFSET_NOT_AVAILABLE = 78
    PRODUCER_FENCED = 90
    # Kafka's own spellings of the two codes renamed above.
    MESSAGE_TOO_LARGE = 10
    INVALID_TOPIC_EXCEPTION = 17


# Kafka marks these retriable: a client may retry after refreshing metadata/backing off.
RETRIABLE: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.CORRUPT_MESSAGE,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.REQUEST_TIMED_OUT,
        ErrorCode.REPLICA_NOT_AVAILABLE,
        ErrorCode.NETWORK_EXCEPTION,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.NOT_CONTROLLER,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.OFFSET_NOT_AVAILABLE,
    }
)

# The gRPC status each Kafka error travels under, for generic gRPC tools.
_GRPC_CODE: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.UNKNOWN_SERVER_ERROR: grpc.StatusCode.INTERNAL,
    ErrorCode.OFFSET_OUT_OF_RANGE: grpc.StatusCode.OUT_OF_RANGE,
    ErrorCode.CORRUPT_MESSAGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: grpc.StatusCode.NOT_FOUND,
    ErrorCode.INVALID_FETCH_SIZE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.LEADER_NOT_AVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.NOT_LEADER_OR_FOLLOWER: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.REQUEST_TIMED_OUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.BROKER_NOT_AVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.REPLICA_NOT_AVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.RECORD_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NETWORK_EXCEPTION: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.INVALID_TOPIC: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.RECORD_LIST_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_ENOUGH_REPLICAS: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.INVALID_REQUIRED_ACKS: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.INVALID_REPLICATION_FACTOR: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.TOPIC_ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.INVALID_PARTITIONS: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_CONTROLLER: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.DUPLICATE_SEQUENCE_NUMBER: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.INVALID_PRODUCER_EPOCH: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.INVALID_CONFIG: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.FENCED_LEADER_EPOCH: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.UNKNOWN_LEADER_EPOCH: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.STALE_BROKER_EPOCH: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.INCONSISTENT_CLUSTER_ID: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.INCONSISTENT_VOTER_SET: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.INVALID_RECORD: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.UNKNOWN_TOPIC_ID: grpc.StatusCode.NOT_FOUND,
    ErrorCode.INVALID_UPDATE_VERSION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.INELIGIBLE_REPLICA: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.UNKNOWN_PRODUCER_ID: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.PRODUCER_FENCED: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.OPERATION_NOT_ATTEMPTED: grpc.StatusCode.ABORTED,
    ErrorCode.OFFSET_NOT_AVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


def grpc_code(code: ErrorCode) -> grpc.StatusCode:
    """The gRPC status code a Kafka error is sent with."""
    return _GRPC_CODE.get(code, grpc.StatusCode.UNKNOWN)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A Kafka-style error as raised in-process and carried in gRPC status details."""

    code: ErrorCode
    message: str
    leader_id: int = 0
    leader_address: str = ""

    @property
    def retriable(self) -> bool:
        return self.code in RETRIABLE


class KafkaError(Exception):
    """An error with a Kafka error code. Servicers turn it into a gRPC status."""

    def __init__(self, code: ErrorCode, message: str, *, leader_id: int = 0,
                 leader_address: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.info = ErrorInfo(code, message, leader_id, leader_address)

    @property
    def code(self) -> ErrorCode:
        return self.info.code

    @property
    def retriable(self) -> bool:
        return self.info.retriable
