"""raftlog.compression: bounded decompression, per codec (pure, no broker)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from aiokafka import codec as kc

from raftlog.compression import CorruptPayload, DecompressedTooLarge, decompress

ENCODERS: dict[int, Callable[[bytes], bytes]] = {
    1: kc.gzip_encode, 2: kc.snappy_encode, 3: kc.lz4_encode, 4: kc.zstd_encode,
}
DATA = bytes(range(256)) * 4000  # 1 000 KiB, mildly compressible


@pytest.mark.parametrize("codec", sorted(ENCODERS))
def test_exact_limit(codec: int) -> None:
    payload = ENCODERS[codec](DATA)
    assert decompress(codec, payload, len(DATA)) == DATA
    with pytest.raises(DecompressedTooLarge):
        decompress(codec, payload, len(DATA) - 1)


@pytest.mark.parametrize("codec", sorted(ENCODERS))
def test_corrupt_payloads(codec: int) -> None:
    payload = ENCODERS[codec](DATA)
    for bad in (payload[: len(payload) // 2], b"garbage" * 30, b""):
        with pytest.raises(CorruptPayload):
            decompress(codec, bad, len(DATA))


@pytest.mark.parametrize("codec", sorted(ENCODERS))
def test_bomb_stops_at_the_limit(codec: int) -> None:
    bomb = ENCODERS[codec](b"\0" * (64 << 20))
    started = time.monotonic()
    with pytest.raises(DecompressedTooLarge):
        decompress(codec, bomb, 1 << 20)
    assert time.monotonic() - started < 0.5


def test_unknown_codec() -> None:
    with pytest.raises(CorruptPayload, match="unknown compression codec 7"):
        decompress(7, b"x", 10)
