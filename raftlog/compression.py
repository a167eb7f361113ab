"""Bounded decompression of RecordBatch v2 payloads (Kafka's codec ids 1-4).

A compressed batch is small on the wire but may expand without bound (a 1 MB gzip
of zeros is 1 GB). Whoever decompresses a batch it did not build — the leader
validating a produce, a consumer reading a fetch — does it here, with a limit on the
decompressed size: each codec is decompressed piecewise and stops as soon as the
output would pass ``limit``, so memory and time stay proportional to the limit, never
to what the payload claims.

Errors: :class:`DecompressedTooLarge` past the limit, :class:`CorruptPayload` for
anything that does not decompress (unknown codec, truncated or garbled stream).
Callers map them to Kafka error codes.
"""

from __future__ import annotations

import struct
import zlib

import cramjam

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

_XERIAL_HEADER = b"\x82SNAPPY\x00"
_LZ4_MAGIC = 0x184D2204
_LZ4_BLOCK_MAX = {4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20}
_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_BLOCK_MAX = 128 << 10  # a zstd block never regenerates more than this


class CorruptPayload(ValueError):
    """The payload is not a valid stream of its codec."""


class DecompressedTooLarge(ValueError):
    """The payload decompresses to more than the limit."""


def decompress(codec: int, payload: bytes | memoryview, limit: int) -> bytes:
    """``payload`` decompressed with Kafka codec ``codec``; at most ``limit`` bytes.

    Raises DecompressedTooLarge as soon as the output would pass ``limit`` (without
    producing the rest), CorruptPayload for an unknown codec or a bad stream."""
    data = memoryview(payload)
    if codec in CODEC_NAMES and codec != NONE and not data:
        raise CorruptPayload(f"empty {CODEC_NAMES[codec]} payload")
    try:
        if codec == GZIP:
            return _gzip(data, limit)
        if codec == SNAPPY:
            return _snappy(data, limit)
        if codec == LZ4:
            return _lz4(data, limit)
        if codec == ZSTD:
            return _zstd(data, limit)
    except (DecompressedTooLarge, CorruptPayload):
        raise
    except (zlib.error, cramjam.DecompressionError, struct.error, ValueError, IndexError) as exc:
        raise CorruptPayload(f"{CODEC_NAMES[codec]} payload does not decompress: {exc}") from exc
    raise CorruptPayload(f"unknown compression codec {codec}")


def _too_large(limit: int) -> DecompressedTooLarge:
    return DecompressedTooLarge(f"decompresses to more than {limit} bytes")


def _gzip(data: memoryview, limit: int) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    # max_length: zlib stops producing output one byte past the limit (the rest of
    # the input stays in unconsumed_tail, never inflated).
    out = d.decompress(data, limit + 1)
    if len(out) > limit:
        raise _too_large(limit)
    if not d.eof:
        raise CorruptPayload("gzip stream is truncated")
    return out


def _varint32(data: memoryview, pos: int = 0) -> int:
    """Snappy's little-endian base-128 uncompressed-length preamble."""
    result = shift = 0
    while True:
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        pos += 1
        shift += 7
        if shift > 28:
            raise CorruptPayload("snappy length preamble is too long")


def _snappy(data: memoryview, limit: int) -> bytes:
    # Each raw snappy block starts with its uncompressed length: check it before decoding.
    if bytes(data[:8]) != _XERIAL_HEADER:
        if _varint32(data) > limit:
            raise _too_large(limit)
        return bytes(cramjam.snappy.decompress_raw(bytes(data)))
    out = bytearray()
    pos = 16  # xerial framing: 8-byte magic, version, compat
    while pos < len(data):
        (size,) = struct.unpack_from(">i", data, pos)
        block = data[pos + 4:pos + 4 + size]
        if size < 0 or len(block) != size:
            raise CorruptPayload("xerial snappy block runs past the payload")
        if len(out) + _varint32(block) > limit:
            raise _too_large(limit)
        out += cramjam.snappy.decompress_raw(bytes(block))
        pos += 4 + size
    return bytes(out)


def _frame_magic(data: memoryview, pos: int) -> tuple[int, int]:
    """The magic number of the frame at ``pos``, and its whole length when it is a
    skippable frame (shared by LZ4 and zstd, to be passed over), else 0."""
    (magic,) = struct.unpack_from("<I", data, pos)
    if magic & 0xFFFFFFF0 == 0x184D2A50:
        (size,) = struct.unpack_from("<I", data, pos + 4)
        return magic, 8 + size
    return magic, 0


def _lz4(data: memoryview, limit: int) -> bytes:
    # LZ4 frame with independent blocks (KIP-57: Kafka rejects linked blocks);
    # each block decompresses into a buffer no larger than the room left.
    out = bytearray()
    pos = 0
    while pos < len(data):
        magic, skip = _frame_magic(data, pos)
        if skip:
            pos += skip
            continue
        if magic != _LZ4_MAGIC:
            raise CorruptPayload(f"bad lz4 frame magic {magic:#x}")
        flg, bd = data[pos + 4], data[pos + 5]
        if flg >> 6 != 1:
            raise CorruptPayload("unsupported lz4 frame version")
        if not flg & 0x20:
            raise CorruptPayload("lz4 frames with linked blocks are not supported (KIP-57)")
        block_max = _LZ4_BLOCK_MAX.get((bd >> 4) & 0x07)
        if block_max is None:
            raise CorruptPayload("bad lz4 block size code")
        block_checksum, content_size, content_checksum, dict_id = flg & 0x10, flg & 0x08, flg & 0x04, flg & 0x01
        pos += 6 + (8 if content_size else 0) + (4 if dict_id else 0) + 1  # +1: header checksum
        while True:
            (word,) = struct.unpack_from("<I", data, pos)
            pos += 4
            if word == 0:  # end mark
                break
            size = word & 0x7FFFFFFF
            block = data[pos:pos + size]
            if len(block) != size or size > block_max:
                raise CorruptPayload("lz4 block runs past the payload")
            room = limit - len(out)
            if word & 0x80000000:  # stored uncompressed
                if size > room:
                    raise _too_large(limit)
                out += block
            else:
                capacity = min(block_max, room + 1)
                if capacity <= 0:
                    raise _too_large(limit)
                piece = bytearray(capacity)
                try:
                    written = int(cramjam.lz4.decompress_block_into(bytes(block), piece))
                except cramjam.DecompressionError as exc:
                    if capacity < block_max:  # may just not fit in the room left
                        raise _too_large(limit) from exc
                    raise
                if written > room:
                    raise _too_large(limit)
                out += memoryview(piece)[:written]
            pos += size + (4 if block_checksum else 0)
        pos += 4 if content_checksum else 0
    return bytes(out)


def _zstd_bound(data: memoryview) -> tuple[int, int | None]:
    """An upper bound of the decompressed size, from the frame and block headers alone
    (raw and RLE blocks state their size, a compressed block is at most 128 KiB), and
    the total content size the frames declare (None when one does not)."""
    bound = 0
    declared: int | None = 0
    pos = 0
    while pos < len(data):
        magic, skip = _frame_magic(data, pos)
        if skip:
            pos += skip
            continue
        if magic != _ZSTD_MAGIC:
            raise CorruptPayload(f"bad zstd frame magic {magic:#x}")
        fhd = data[pos + 4]
        fcs_code, single_segment, checksum, dict_code = fhd >> 6, fhd & 0x20, fhd & 0x04, fhd & 0x03
        fcs_size = (1 if single_segment else 0, 2, 4, 8)[fcs_code]
        pos += 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_code]
        if fcs_size and declared is not None:
            declared += int.from_bytes(data[pos:pos + fcs_size], "little") + (256 if fcs_size == 2 else 0)
        else:
            declared = None
        pos += fcs_size
        while True:
            if pos + 3 > len(data):
                raise CorruptPayload("zstd block header runs past the payload")
            header = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16
            last, kind, size = header & 1, (header >> 1) & 3, header >> 3
            pos += 3
            if kind == 0:  # raw
                bound += size
                pos += size
            elif kind == 1:  # RLE: one byte repeated size times
                bound += size
                pos += 1
            elif kind == 2:
                bound += _ZSTD_BLOCK_MAX
                pos += size
            else:
                raise CorruptPayload("reserved zstd block type")
            if last:
                break
        pos += 4 if checksum else 0
    if pos != len(data):
        raise CorruptPayload("zstd frame runs past the payload")
    return bound, declared


def _zstd(data: memoryview, limit: int) -> bytes:
    # Bounded by construction: decode only when the header-derived bound fits (it is
    # at most 128 KiB over the real size of a frame), or the declared content size does
    # (libzstd fails a frame as soon as it decodes more than its declared size).
    bound, declared = _zstd_bound(data)
    if bound > limit and (declared is None or declared > limit):
        raise _too_large(limit)
    out = bytes(cramjam.zstd.decompress(bytes(data)))
    if len(out) > limit:
        raise _too_large(limit)
    return out
