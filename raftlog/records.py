"""Kafka RecordBatch v2 (magic 2) on the wire and on disk.

The producer builds batches (with aiokafka's C-accelerated builder); the leader checks
the header and CRC-32C and reads every record (``node/broker/log_validator.py``), then
stamps the base offset and partition leader epoch — both outside the CRC, as in Kafka
— and stores the very same bytes. Records are never re-encoded on the broker.

Header layout (big endian, 61 bytes before the records):
  0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32 |
  16 magic int8 | 17 crc uint32 | 21 attributes int16 | 23 lastOffsetDelta int32 |
  27 baseTimestamp int64 | 35 maxTimestamp int64 | 43 producerId int64 |
  51 producerEpoch int16 | 53 baseSequence int32 | 57 recordsCount int32
batchLength counts the bytes after itself; the CRC covers attributes to the end.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

from raftlog.compression import decompress
from raftlog.errors import ErrorCode, KafkaError

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: bytes before batchLength's coverage starts
MAGIC = 2
_CRC_START = 21
_HEADER = struct.Struct(">qiibIhiqqqhii")
_OFFSET_AND_EPOCH = struct.Struct(">q")
_EPOCH = struct.Struct(">i")

# attributes bits
COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08  # set: LogAppendTime (only a broker may set it)
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

NO_PRODUCER_ID = -1
NO_SEQUENCE = -1


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes of the whole batch (header included)."""
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF

    @property
    def is_idempotent(self) -> bool:
        return self.producer_id != NO_PRODUCER_ID

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK


def read_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Parse the header at ``pos``; raises CORRUPT_MESSAGE when too short or not magic 2."""
    if len(buf) - pos < HEADER_SIZE:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch of {len(buf) - pos} bytes is shorter than a header")
    header = BatchHeader(*_HEADER.unpack_from(buf, pos))
    if header.magic != MAGIC:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch has magic {header.magic}; only magic 2 is supported")
    return header


def validate_batch(buf: bytes | bytearray | memoryview, max_bytes: int) -> BatchHeader:
    """Check one complete batch as a leader must before appending it.

    CORRUPT_MESSAGE for a bad length, magic, CRC, record count or offset delta;
    RECORD_TOO_LARGE when the batch is over ``max_bytes`` (``max.message.bytes``).
    """
    header = read_header(buf)
    if header.size != len(buf):
        raise KafkaError(
            ErrorCode.CORRUPT_MESSAGE, f"batch length field says {header.size} bytes but {len(buf)} were sent"
        )
    if header.size > max_bytes:
        raise KafkaError(ErrorCode.RECORD_TOO_LARGE, f"batch of {header.size} bytes is over max.message.bytes={max_bytes}")
    if header.records_count <= 0 or header.last_offset_delta != header.records_count - 1:
        raise KafkaError(
            ErrorCode.CORRUPT_MESSAGE,
            f"batch has {header.records_count} records but last offset delta {header.last_offset_delta}",
        )
    crc = calc_crc32c(bytes(memoryview(buf)[_CRC_START:]))
    if crc != header.crc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch CRC {header.crc:#010x} does not match {crc:#010x}")
    return header


def stamp(buf: bytes | bytearray | memoryview, base_offset: int, leader_epoch: int) -> bytes:
    """The same batch with its base offset and partition leader epoch set. Neither is
    covered by the CRC, so the records and CRC stay byte-for-byte what was produced."""
    out = bytearray(buf)
    _OFFSET_AND_EPOCH.pack_into(out, 0, base_offset)
    _EPOCH.pack_into(out, 12, leader_epoch)
    return bytes(out)


def split_batches(buf: bytes | bytearray | memoryview) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Walk concatenated batches (a fetch response, a produce request's records)."""
    view = memoryview(buf)
    pos = 0
    while pos < len(view):
        header = read_header(view, pos)
        end = pos + header.size
        if end > len(view) or header.batch_length < HEADER_SIZE - LOG_OVERHEAD:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch at byte {pos} runs past the end of the data")
        yield header, view[pos:end]
        pos = end


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


def crc_ok(batch: bytes | bytearray | memoryview, header: BatchHeader) -> bool:
    """Whether the batch's CRC-32C (attributes to the end) matches its header."""
    return bool(calc_crc32c(bytes(memoryview(batch)[_CRC_START:])) == header.crc)


def plain_batch(header: BatchHeader, batch: memoryview, limit: int) -> bytes | memoryview:
    """The batch with its records uncompressed (decompressed within ``limit`` bytes),
    for reading with aiokafka's ``DefaultRecordBatch`` — never for storing: the codec
    bits are cleared, so its CRC no longer matches. Raises
    :class:`raftlog.compression.CorruptPayload` or ``DecompressedTooLarge``."""
    codec = header.compression
    if codec == 0:
        return batch  # read in place
    inner = decompress(codec, batch[HEADER_SIZE:], limit)
    head = bytearray(batch[:HEADER_SIZE])
    head[22] &= 0xFF ^ COMPRESSION_MASK  # low byte of the attributes
    return bytes(head) + inner


def read_records(batch: bytes | bytearray | memoryview) -> list[Record]:
    """Decode the records of one batch (tests and tools; unbounded: trusted batches only)."""
    decoded = DefaultRecordBatch(bytes(batch))
    return [
        Record(r.offset, r.timestamp, r.key, r.value, tuple((k, v) for k, v in r.headers))
        for r in decoded
    ]


def build_batch(
    records: Sequence[tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes | None, int]],
    *,
    base_offset: int = 0,
    compression: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = NO_SEQUENCE,
    headers: list[tuple[str, bytes]] | None = None,
) -> bytes:
    """Build one batch of (key, value[, timestamp_ms]) records with aiokafka's builder."""
    builder = DefaultRecordBatchBuilder(
        magic=MAGIC,
        compression_type=compression,
        is_transactional=False,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        batch_size=1 << 30,
    )
    for delta, item in enumerate(records):
        timestamp = item[2] if len(item) == 3 else None
        if builder.append(delta, timestamp=timestamp, key=item[0], value=item[1], headers=headers or []) is None:
            raise KafkaError(ErrorCode.RECORD_TOO_LARGE, "record does not fit in a batch")
    built = bytes(builder.build())
    return stamp(built, base_offset, -1) if base_offset else built
