"""What a leader checks of a produce request before anything is written — Kafka's
``LogValidator``, for RecordBatch v2 without re-encoding.

Per batch: the header (length, magic, CRC, ``max.message.bytes``), the attributes
(no control or transactional batches, a known codec), then every record: the records
are iterated (decompressed first, within a bound) so the batch holds exactly
``recordsCount`` well-formed records with offset deltas 0..n-1, and every timestamp is
inside the topic's ``message.timestamp.before.max.ms``/``after.max.ms`` window.

Bounds: a compressed batch may decompress to at most ``max.message.bytes`` of records
(what the producer's own size limits allow); past that it is refused as INVALID_RECORD
without decompressing the rest (decompression bombs).

Error codes as Kafka's: CORRUPT_MESSAGE for bytes that do not parse or decompress,
INVALID_RECORD for well-formed batches whose records disagree with their header or
are not allowed, RECORD_TOO_LARGE over ``max.message.bytes``, INVALID_TIMESTAMP.
The leader stores the very bytes it was sent: validation only reads.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatch

from raftlog.compression import CODEC_NAMES, CorruptPayload, DecompressedTooLarge
from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import (
    CONTROL_BIT,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    BatchHeader,
    plain_batch,
    split_batches,
    validate_batch,
)
from raftlog.topic_config import DEFAULT_TIMESTAMP_AFTER_MAX_MS, DEFAULT_TIMESTAMP_BEFORE_MAX_MS


@dataclass(frozen=True, slots=True)
class ValidatedBatch:
    """One batch of a produce request that passed validation (a view into the request)."""

    header: BatchHeader
    data: memoryview


def validate_produce(
    records: bytes,
    max_message_bytes: int,
    *,
    timestamp_before_max_ms: int = DEFAULT_TIMESTAMP_BEFORE_MAX_MS,
    timestamp_after_max_ms: int = DEFAULT_TIMESTAMP_AFTER_MAX_MS,
    now_ms: int | None = None,
) -> list[ValidatedBatch]:
    """Every check a leader makes before anything of ``records`` is written; raises a
    KafkaError for the first bad batch (so a request is taken whole or not at all)."""
    if not records:
        raise KafkaError(ErrorCode.INVALID_RECORD, "produce request carries no record batch")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    out: list[ValidatedBatch] = []
    for header, view in split_batches(records):
        validate_batch(view, max_message_bytes)
        if header.attributes & CONTROL_BIT:
            raise KafkaError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
        if header.attributes & TRANSACTIONAL_BIT:
            raise KafkaError(ErrorCode.INVALID_RECORD, "transactional batches are not supported")
        if header.is_idempotent and (header.producer_epoch < 0 or header.base_sequence < 0):
            raise KafkaError(
                ErrorCode.INVALID_RECORD,
                f"idempotent batch of producer {header.producer_id} needs an epoch and a base sequence",
            )
        validate_records(header, view, max_message_bytes, now - timestamp_before_max_ms,
                         now + timestamp_after_max_ms)
        out.append(ValidatedBatch(header, view))
    return out


def validate_records(header: BatchHeader, batch: memoryview, max_records_bytes: int,
                     min_timestamp: int, max_timestamp: int) -> None:
    """Iterate the records of one (header-checked) batch: exactly ``recordsCount`` of
    them, offset deltas 0..n-1, timestamps within [min_timestamp, max_timestamp] and
    the header's maxTimestamp their maximum."""
    codec = header.compression
    if codec not in CODEC_NAMES:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"unknown compression codec {codec}")
    if header.attributes & TIMESTAMP_TYPE_BIT:
        raise KafkaError(ErrorCode.INVALID_RECORD, "producers may not send LogAppendTime batches")
    try:
        plain = plain_batch(header, batch, max_records_bytes)
    except DecompressedTooLarge as exc:
        raise KafkaError(ErrorCode.INVALID_RECORD,
                         f"{CODEC_NAMES[codec]} batch {exc} (max.message.bytes={max_records_bytes})") from exc
    except CorruptPayload as exc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc
    expected = 0
    low, top = header.base_timestamp, -1 << 63
    base_offset = header.base_offset
    try:
        for record in DefaultRecordBatch(plain):
            if record.offset - base_offset != expected:
                raise KafkaError(ErrorCode.INVALID_RECORD,
                                 f"record {expected} of the batch has offset delta {record.offset - base_offset}")
            timestamp = record.timestamp
            if timestamp > top:
                top = timestamp
            if timestamp < low:  # timestamp deltas may be negative
                low = timestamp
            expected += 1
    except (CorruptRecordException, ValueError, IndexError) as exc:  # UnicodeDecodeError is a ValueError
        raise KafkaError(ErrorCode.INVALID_RECORD,
                         f"batch declares {header.records_count} records; record {expected} is malformed: {exc}") from exc
    if expected != header.records_count:
        raise KafkaError(ErrorCode.INVALID_RECORD,
                         f"batch declares {header.records_count} records but holds {expected}")
    # Checking the oldest and the newest checks every record.
    for timestamp in (low, top):
        if timestamp < min_timestamp:
            raise KafkaError(ErrorCode.INVALID_TIMESTAMP,
                             f"timestamp {timestamp} is older than message.timestamp.before.max.ms allows")
        if timestamp > max_timestamp:
            raise KafkaError(ErrorCode.INVALID_TIMESTAMP,
                             f"timestamp {timestamp} is further ahead than message.timestamp.after.max.ms allows")
    if header.max_timestamp != top:
        raise KafkaError(ErrorCode.INVALID_RECORD,
                         f"batch maxTimestamp {header.max_timestamp} is not its records' maximum {top}")
