"""The exceptions the SDK raises: one class per Kafka error code, plus client-side ones.

Every class derives from :class:`KafkaException`. Errors a broker answered with (a
Kafka error code in the gRPC status details) are :class:`BrokerResponseError`
subclasses — one per :class:`~raftlog.errors.ErrorCode`, named as Kafka's Java
client names them (``NOT_LEADER_OR_FOLLOWER`` -> :class:`NotLeaderOrFollowerError`)
— and are also :class:`raftlog.errors.KafkaError`, so code that already catches that
keeps working. Each class says whether a retry may succeed (``retriable``), as
Kafka's ``RetriableException`` does; branch on the class or on ``.code``, never on
the message text.
"""

from __future__ import annotations

import grpc

from raftlog.errors import RETRIABLE, ErrorCode, KafkaError
from raftlog.status import from_rpc_error as _info_from_rpc


class KafkaException(Exception):
    """Base class of every exception the raftlog client SDK raises.

    ``code`` is the Kafka error code when there is one (None for purely client-side
    errors such as a serializer failure); ``retriable`` says whether the same
    request may succeed if tried again later.
    """

    code: ErrorCode | None = None
    retriable: bool = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message or type(self).__name__


class BrokerResponseError(KafkaException, KafkaError):
    """A Kafka error code a broker or controller answered with.

    ``leader_id``/``leader_address`` carry the partition leader (or active
    controller) the answering node knows of, when the error names one
    (NOT_LEADER_OR_FOLLOWER, NOT_CONTROLLER); 0 and "" otherwise.
    """

    code: ErrorCode = ErrorCode.UNKNOWN_SERVER_ERROR

    def __init__(self, message: str = "", *, leader_id: int = 0, leader_address: str = "") -> None:
        KafkaError.__init__(self, type(self).code, message, leader_id=leader_id, leader_address=leader_address)
        self.message = message

    def __str__(self) -> str:
        name = type(self).code.name
        return f"{name}: {self.message}" if self.message else name

    @property
    def leader_id(self) -> int:
        """The leader the broker named (0 when unknown)."""
        return self.info.leader_id

    @property
    def leader_address(self) -> str:
        """host:port of the leader the broker named ("" when unknown)."""
        return self.info.leader_address


def _retriable(code: ErrorCode) -> bool:
    return code in RETRIABLE


# --------------------------------------------------------------------- one class per code
class UnknownServerError(BrokerResponseError):
    """UNKNOWN_SERVER_ERROR (-1): an unexpected server error."""

    code = ErrorCode.UNKNOWN_SERVER_ERROR
    retriable = _retriable(code)


class OffsetOutOfRangeError(BrokerResponseError):
    """OFFSET_OUT_OF_RANGE (1): the offset is outside the partition's [log start, HW]."""

    code = ErrorCode.OFFSET_OUT_OF_RANGE
    retriable = _retriable(code)


class CorruptRecordError(BrokerResponseError):
    """CORRUPT_MESSAGE (2): a batch failed its CRC or header checks."""

    code = ErrorCode.CORRUPT_MESSAGE
    retriable = _retriable(code)


class UnknownTopicOrPartitionError(BrokerResponseError):
    """UNKNOWN_TOPIC_OR_PARTITION (3): no such topic or partition (yet)."""

    code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    retriable = _retriable(code)


class InvalidFetchSizeError(BrokerResponseError):
    """INVALID_FETCH_SIZE (4)."""

    code = ErrorCode.INVALID_FETCH_SIZE
    retriable = _retriable(code)


class LeaderNotAvailableError(BrokerResponseError):
    """LEADER_NOT_AVAILABLE (5): the partition has no leader right now."""

    code = ErrorCode.LEADER_NOT_AVAILABLE
    retriable = _retriable(code)


class NotLeaderOrFollowerError(BrokerResponseError):
    """NOT_LEADER_OR_FOLLOWER (6): the request went to a broker that does not lead the partition."""

    code = ErrorCode.NOT_LEADER_OR_FOLLOWER
    retriable = _retriable(code)


class RequestTimedOutError(BrokerResponseError):
    """REQUEST_TIMED_OUT (7): the broker (or the call's deadline) timed out."""

    code = ErrorCode.REQUEST_TIMED_OUT
    retriable = _retriable(code)


class BrokerNotAvailableError(BrokerResponseError):
    """BROKER_NOT_AVAILABLE (8)."""

    code = ErrorCode.BROKER_NOT_AVAILABLE
    retriable = _retriable(code)


class ReplicaNotAvailableError(BrokerResponseError):
    """REPLICA_NOT_AVAILABLE (9)."""

    code = ErrorCode.REPLICA_NOT_AVAILABLE
    retriable = _retriable(code)


class RecordTooLargeError(BrokerResponseError):
    """RECORD_TOO_LARGE / MESSAGE_TOO_LARGE (10): larger than ``max.message.bytes``
    (topic) or ``max_request_size`` (producer)."""

    code = ErrorCode.RECORD_TOO_LARGE
    retriable = _retriable(code)


class NetworkExceptionError(BrokerResponseError):
    """NETWORK_EXCEPTION (13): the connection failed before an answer came."""

    code = ErrorCode.NETWORK_EXCEPTION
    retriable = _retriable(code)


class InvalidTopicError(BrokerResponseError):
    """INVALID_TOPIC_EXCEPTION (17): the topic name is not legal."""

    code = ErrorCode.INVALID_TOPIC
    retriable = _retriable(code)


class RecordListTooLargeError(BrokerResponseError):
    """RECORD_LIST_TOO_LARGE (18)."""

    code = ErrorCode.RECORD_LIST_TOO_LARGE
    retriable = _retriable(code)


class NotEnoughReplicasError(BrokerResponseError):
    """NOT_ENOUGH_REPLICAS (19): the ISR is below ``min.insync.replicas``; nothing was written."""

    code = ErrorCode.NOT_ENOUGH_REPLICAS
    retriable = _retriable(code)


class NotEnoughReplicasAfterAppendError(BrokerResponseError):
    """NOT_ENOUGH_REPLICAS_AFTER_APPEND (20): written by the leader, but the ISR shrank."""

    code = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
    retriable = _retriable(code)


class InvalidRequiredAcksError(BrokerResponseError):
    """INVALID_REQUIRED_ACKS (21)."""

    code = ErrorCode.INVALID_REQUIRED_ACKS
    retriable = _retriable(code)


class TopicAlreadyExistsError(BrokerResponseError):
    """TOPIC_ALREADY_EXISTS (36)."""

    code = ErrorCode.TOPIC_ALREADY_EXISTS
    retriable = _retriable(code)


class InvalidPartitionsError(BrokerResponseError):
    """INVALID_PARTITIONS (37)."""

    code = ErrorCode.INVALID_PARTITIONS
    retriable = _retriable(code)


class InvalidReplicationFactorError(BrokerResponseError):
    """INVALID_REPLICATION_FACTOR (38)."""

    code = ErrorCode.INVALID_REPLICATION_FACTOR
    retriable = _retriable(code)


class InvalidConfigurationError(BrokerResponseError):
    """INVALID_CONFIG (40): a topic config name or value is not valid."""

    code = ErrorCode.INVALID_CONFIG
    retriable = _retriable(code)


class NotControllerError(BrokerResponseError):
    """NOT_CONTROLLER (41): the node asked is not the active controller."""

    code = ErrorCode.NOT_CONTROLLER
    retriable = _retriable(code)


class InvalidRequestError(BrokerResponseError):
    """INVALID_REQUEST (42)."""

    code = ErrorCode.INVALID_REQUEST
    retriable = _retriable(code)


class OutOfOrderSequenceNumberError(BrokerResponseError):
    """OUT_OF_ORDER_SEQUENCE_NUMBER (45): the leader saw a gap in an idempotent producer's sequence."""

    code = ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    retriable = _retriable(code)


class DuplicateSequenceNumberError(BrokerResponseError):
    """DUPLICATE_SEQUENCE_NUMBER (46)."""

    code = ErrorCode.DUPLICATE_SEQUENCE_NUMBER
    retriable = _retriable(code)


class InvalidProducerEpochError(BrokerResponseError):
    """INVALID_PRODUCER_EPOCH (47): a newer instance of this producer id exists."""

    code = ErrorCode.INVALID_PRODUCER_EPOCH
    retriable = _retriable(code)


class UnknownProducerIdError(BrokerResponseError):
    """UNKNOWN_PRODUCER_ID (59)."""

    code = ErrorCode.UNKNOWN_PRODUCER_ID
    retriable = _retriable(code)


class OperationNotAttemptedError(BrokerResponseError):
    """OPERATION_NOT_ATTEMPTED (55): the broker did not try the operation."""

    code = ErrorCode.OPERATION_NOT_ATTEMPTED
    retriable = _retriable(code)


class OffsetNotAvailableError(BrokerResponseError):
    """OFFSET_NOT_AVAILABLE (78): a new leader's high watermark has not caught up
    yet (KIP-207); retry."""

    code = ErrorCode.OFFSET_NOT_AVAILABLE
    retriable = _retriable(code)


class FencedLeaderEpochError(BrokerResponseError):
    """FENCED_LEADER_EPOCH (74): the client's leader epoch is older than the broker's."""

    code = ErrorCode.FENCED_LEADER_EPOCH
    retriable = _retriable(code)


class UnknownLeaderEpochError(BrokerResponseError):
    """UNKNOWN_LEADER_EPOCH (75): the client's leader epoch is newer than the broker's."""

    code = ErrorCode.UNKNOWN_LEADER_EPOCH
    retriable = _retriable(code)


class StaleBrokerEpochError(BrokerResponseError):
    """STALE_BROKER_EPOCH (77)."""

    code = ErrorCode.STALE_BROKER_EPOCH
    retriable = _retriable(code)


class InvalidRecordError(BrokerResponseError):
    """INVALID_RECORD (87): the broker refused a record (e.g. a control or transactional batch)."""

    code = ErrorCode.INVALID_RECORD
    retriable = _retriable(code)


class ProducerFencedError(BrokerResponseError):
    """PRODUCER_FENCED (90)."""

    code = ErrorCode.PRODUCER_FENCED
    retriable = _retriable(code)


class InconsistentVoterSetError(BrokerResponseError):
    """INCONSISTENT_VOTER_SET (94)."""

    code = ErrorCode.INCONSISTENT_VOTER_SET
    retriable = _retriable(code)


class InvalidUpdateVersionError(BrokerResponseError):
    """INVALID_UPDATE_VERSION (95)."""

    code = ErrorCode.INVALID_UPDATE_VERSION
    retriable = _retriable(code)


class UnknownTopicIdError(BrokerResponseError):
    """UNKNOWN_TOPIC_ID (100)."""

    code = ErrorCode.UNKNOWN_TOPIC_ID
    retriable = _retriable(code)


class InconsistentClusterIdError(BrokerResponseError):
    """INCONSISTENT_CLUSTER_ID (104)."""

    code = ErrorCode.INCONSISTENT_CLUSTER_ID
    retriable = _retriable(code)


class IneligibleReplicaError(BrokerResponseError):
    """INELIGIBLE_REPLICA (107)."""

    code = ErrorCode.INELIGIBLE_REPLICA
    retriable = _retriable(code)


# Kafka's other spellings.
MessageSizeTooLargeError = RecordTooLargeError
NotLeaderForPartitionError = NotLeaderOrFollowerError
CorruptMessageError = CorruptRecordError

_BY_CODE: dict[ErrorCode, type[BrokerResponseError]] = {
    cls.code: cls
    for cls in BrokerResponseError.__subclasses__()
}


def error_class(code: ErrorCode | int) -> type[BrokerResponseError]:
    """The exception class for a Kafka error code (UnknownServerError for an unknown one)."""
    try:
        return _BY_CODE[ErrorCode(code)]
    except (ValueError, KeyError):
        return UnknownServerError


def from_kafka_error(error: KafkaError) -> BrokerResponseError:
    """The typed exception for a :class:`raftlog.errors.KafkaError`."""
    if isinstance(error, BrokerResponseError):
        return error
    info = error.info
    return error_class(info.code)(info.message, leader_id=info.leader_id, leader_address=info.leader_address)


def from_rpc_error(err: grpc.RpcError, context: str = "") -> BrokerResponseError:
    """The typed exception for a failed gRPC call; ``context`` (e.g. the node and the
    method) is prefixed to the message so it names what failed."""
    info = _info_from_rpc(err)
    message = f"{context}: {info.message}" if context else info.message
    return error_class(info.code)(message, leader_id=info.leader_id, leader_address=info.leader_address)


# --------------------------------------------------------------------- client-side errors
class KafkaTimeoutError(KafkaException):
    """An operation did not finish within its time budget (``max_block_ms``,
    ``delivery_timeout_ms``, a ``flush``/``close`` timeout, a poll of metadata)."""

    code = ErrorCode.REQUEST_TIMED_OUT
    retriable = True


class SerializationError(KafkaException):
    """A key or value could not be serialized (producer) or deserialized (consumer).

    ``cause`` is the original exception; the message names the topic, the field
    (key or value), the serializer and the cause.
    """

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class IllegalStateError(KafkaException):
    """The client is in a state where the call is not allowed."""


class ProducerClosedError(IllegalStateError):
    """The producer was closed; it accepts no more records."""


class ConsumerClosedError(IllegalStateError):
    """The consumer was closed."""


class NoBrokersAvailable(KafkaException):
    """No node of the bootstrap list (or of the known cluster) answered."""

    code = ErrorCode.NETWORK_EXCEPTION
    retriable = True


class KafkaConfigurationError(KafkaException):
    """A client setting has a value that is not allowed, or settings contradict each other."""


class BufferExhaustedError(KafkaTimeoutError):
    """The producer's ``buffer_memory`` is full and stayed full for ``max_block_ms``
    (or the producer is set to raise at once when full)."""


__all__ = [
    "BrokerNotAvailableError",
    "BrokerResponseError",
    "BufferExhaustedError",
    "ConsumerClosedError",
    "CorruptMessageError",
    "CorruptRecordError",
    "DuplicateSequenceNumberError",
    "FencedLeaderEpochError",
    "IllegalStateError",
    "InconsistentClusterIdError",
    "InconsistentVoterSetError",
    "IneligibleReplicaError",
    "InvalidConfigurationError",
    "InvalidFetchSizeError",
    "InvalidPartitionsError",
    "InvalidProducerEpochError",
    "InvalidRecordError",
    "InvalidReplicationFactorError",
    "InvalidRequestError",
    "InvalidRequiredAcksError",
    "InvalidTopicError",
    "InvalidUpdateVersionError",
    "KafkaConfigurationError",
    "KafkaException",
    "KafkaTimeoutError",
    "LeaderNotAvailableError",
    "MessageSizeTooLargeError",
    "NetworkExceptionError",
    "NoBrokersAvailable",
    "NotControllerError",
    "NotEnoughReplicasAfterAppendError",
    "NotEnoughReplicasError",
    "NotLeaderForPartitionError",
    "NotLeaderOrFollowerError",
    "OffsetNotAvailableError",
    "OffsetOutOfRangeError",
    "OperationNotAttemptedError",
    "OutOfOrderSequenceNumberError",
    "ProducerClosedError",
    "ProducerFencedError",
    "RecordListTooLargeError",
    "RecordTooLargeError",
    "ReplicaNotAvailableError",
    "RequestTimedOutError",
    "SerializationError",
    "StaleBrokerEpochError",
    "TopicAlreadyExistsError",
    "UnknownLeaderEpochError",
    "UnknownProducerIdError",
    "UnknownServerError",
    "UnknownTopicIdError",
    "UnknownTopicOrPartitionError",
    "error_class",
    "from_kafka_error",
    "from_rpc_error",
]
