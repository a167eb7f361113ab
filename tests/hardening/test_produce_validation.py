"""Hostile produce batches (hardening finding 1): the leader refuses each with a Kafka
error code, writes nothing, and keeps serving good batches.

Every batch is crafted byte by byte (with a valid CRC, so only the new record-level
validation can catch it) and sent through the real gRPC Produce of an in-process broker.
"""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pytest

from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.broker.replica_manager import LogFactory
from raftlog.records import build_batch, read_header
from aiokafka.record.util import calc_crc32c
from tests.broker.harness import Cluster, batch, poll, run

_CRC_START = 21


def recrc(data: bytes | bytearray) -> bytes:
    """The batch with its CRC-32C recomputed (what an attacker can always do)."""
    out = bytearray(data)
    struct.pack_into(">I", out, 17, calc_crc32c(bytes(out[_CRC_START:])))
    return bytes(out)


def with_count(data: bytes, records_count: int) -> bytes:
    """Header claims ``records_count`` records (and a matching lastOffsetDelta)."""
    out = bytearray(data)
    struct.pack_into(">i", out, 23, records_count - 1)
    struct.pack_into(">i", out, 57, records_count)
    return recrc(out)


def with_codec(data: bytes, codec: int) -> bytes:
    out = bytearray(data)
    (attributes,) = struct.unpack_from(">h", out, 21)
    struct.pack_into(">h", out, 21, (attributes & ~0x07) | codec)
    return recrc(out)


def gzip_bomb(uncompressed_bytes: int) -> bytes:
    """One record whose value is ``uncompressed_bytes`` zeros, gzip-compressed."""
    return build_batch([(None, b"\0" * uncompressed_bytes)], compression=1)


def test_leader_refuses_hostile_batches(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, size=1, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1]])
            c.controller.create_topic("old", [[1]], {"message.timestamp.before.max.ms": "60000"})
            await poll(lambda: c[1].partition("t").is_leader and c[1].partition("old").is_leader, what="leader")
            now = int(time.time() * 1000)
            one = batch([b"v"])
            bomb = gzip_bomb(64 << 20)
            assert len(bomb) < 1048588  # small on the wire, 64 MiB decompressed
            cases: list[tuple[str, str, bytes, set[ErrorCode]]] = [
                # 1 record inside, header claims 2^31-1: offsets would jump by 2^31.
                ("offset jump", "t", with_count(one, (1 << 31) - 1), {ErrorCode.INVALID_RECORD}),
                ("count too small", "t", with_count(batch([b"a", b"b", b"c"]), 2), {ErrorCode.INVALID_RECORD}),
                ("codec 7", "t", with_codec(one, 7), {ErrorCode.CORRUPT_MESSAGE}),
                ("gzip flag on plain records", "t", with_codec(one, 1), {ErrorCode.CORRUPT_MESSAGE}),
                ("truncated gzip", "t", _truncated_gzip(), {ErrorCode.CORRUPT_MESSAGE}),
                ("gzip bomb", "t", bomb, {ErrorCode.INVALID_RECORD, ErrorCode.CORRUPT_MESSAGE}),
                ("lz4 bomb", "t", build_batch([(None, b"\0" * (64 << 20))], compression=3),
                 {ErrorCode.INVALID_RECORD, ErrorCode.CORRUPT_MESSAGE}),
                ("zstd bomb", "t", build_batch([(None, b"\0" * (64 << 20))], compression=4),
                 {ErrorCode.INVALID_RECORD, ErrorCode.CORRUPT_MESSAGE}),
                ("snappy bomb", "t", build_batch([(None, b"\0" * (16 << 20))], compression=2),
                 {ErrorCode.INVALID_RECORD, ErrorCode.CORRUPT_MESSAGE}),
                ("timestamp 2^62", "t", build_batch([(None, b"v", 1 << 62)]), {ErrorCode.INVALID_TIMESTAMP}),
                ("two hours ahead", "t", build_batch([(None, b"v", now + 7_200_000)]), {ErrorCode.INVALID_TIMESTAMP}),
                ("too old for before.max.ms", "old", build_batch([(None, b"v", now - 3_600_000)]),
                 {ErrorCode.INVALID_TIMESTAMP}),
            ]
            failures: list[str] = []
            for name, topic, data, codes in cases:
                started = time.monotonic()
                try:
                    await c.produce(1, topic, data, acks=1)
                except KafkaError as err:
                    if err.code not in codes:
                        failures.append(f"{name}: {err.code.name} ({err}), expected {sorted(x.name for x in codes)}")
                else:
                    failures.append(f"{name}: accepted, expected {sorted(x.name for x in codes)}")
                elapsed = time.monotonic() - started
                if elapsed > 2.0:
                    failures.append(f"{name}: took {elapsed:.2f}s")
            for topic in ("t", "old"):
                p = c[1].partition(topic)
                if p.log_end_offset != 0:
                    failures.append(f"{topic}: log end offset {p.log_end_offset} after refused batches, expected 0")
            assert not failures, "\n".join(failures)
            # Still healthy: good batches, compressed ones included, are taken at the next offsets.
            assert (await c.produce(1, "t", one, acks=1)).base_offset == 0
            assert (await c.produce(1, "t", build_batch([(None, b"x" * 1000)] * 100, compression=1),
                                    acks=1)).base_offset == 1
            for codec in (2, 3, 4):
                await c.produce(1, "t", build_batch([(None, b"y" * 1000)] * 10, compression=codec), acks=1)
            assert c[1].partition("t").log_end_offset == 131
            await c.produce(1, "old", build_batch([(None, b"v", now)]), acks=1)

    run(scenario(), 120)


def _truncated_gzip() -> bytes:
    good = build_batch([(None, b"v" * 5000)], compression=1)
    header = read_header(good)
    assert header.compression == 1
    payload = good[61:]
    assert zlib.decompressobj(47).decompress(payload)  # it is gzip
    cut = bytearray(good[: 61 + len(payload) // 2])
    struct.pack_into(">i", cut, 8, len(cut) - 12)
    return recrc(cut)


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_bounded_decompression_is_exact_below_the_limit(codec: int) -> None:
    """A compressed batch just under the limit decompresses; the same one-byte-per-record
    larger payload is refused (pure, no broker)."""
    from raftlog.node.broker.log_validator import validate_produce

    data = build_batch([(None, b"z" * 1000)] * 50, compression=codec)
    assert validate_produce(data, 1 << 20)[0].header.records_count == 50
    with pytest.raises(KafkaError) as err:
        validate_produce(data, 40_000)
    assert err.value.code in (ErrorCode.INVALID_RECORD, ErrorCode.RECORD_TOO_LARGE)
