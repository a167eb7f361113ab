"""The producer's batching, retries and idempotence against an in-process fake broker
(no cluster): seeded fault injection, then check every record landed once, in order."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable

import pytest

from raftlog.client.accumulator import BufferPool, RecordAccumulator, restamp
from raftlog.client.config import ProducerConfig, build_config
from raftlog.client.errors import (
    BufferExhaustedError,
    KafkaConfigurationError,
    ProducerClosedError,
    RecordTooLargeError,
)
from raftlog.client.futures import FutureRecordMetadata
from raftlog.client.producer_core import ProducerCore
from raftlog.client.types import TopicPartition
from raftlog.records import read_header, validate_batch
from tests.client.fake_broker import FakeBroker, Faults

TP = TopicPartition("t", 0)
SEEDS = int(os.environ.get("RAFTLOG_FUZZ_SEEDS", "6"))  # more for a longer fuzz run


def make_accumulator(batch_size: int = 1024, linger_ms: int = 100, memory: int = 1 << 20) -> RecordAccumulator:
    return RecordAccumulator(batch_size=batch_size, compression=0, linger_ms=linger_ms, delivery_timeout_ms=60_000,
                             pool=BufferPool(memory), on_new_batch=lambda: None)


def append(acc: RecordAccumulator, value: bytes, tp: TopicPartition = TP) -> FutureRecordMetadata:
    future = acc.try_append(tp, None, None, value, [])
    if future is None:
        reserve = acc.reservation_for(len(value) + 100)
        assert acc.pool.try_reserve(reserve)
        future, unused = acc.append_new_batch(tp, None, None, value, [], reserve)
        acc.pool.release(unused)
    return future


# ---------------------------------------------------------------------- accumulator
def test_batches_fill_to_batch_size_and_wait_for_linger() -> None:
    acc = make_accumulator(batch_size=1024, linger_ms=10_000)
    for _ in range(30):
        append(acc, b"x" * 100)
    queued = acc.queued(TP)
    assert len(queued) >= 3 and all(b.full for b in queued[:-1])
    assert sum(b.record_count for b in queued) == 30
    assert all(b.size() <= 1024 for b in queued)
    now = time.monotonic()
    ready, _ = acc.ready(now, lambda tp: True)
    assert ready == [TP]  # full batches are ready at once
    drained = acc.drain(TP, now, 10, 1 << 20)
    assert len(drained) == len(queued) - 1  # the open batch waits for linger_ms
    ready, wait = acc.ready(now, lambda tp: True)
    assert ready == [] and 9 < wait <= 10
    acc.flushing += 1
    assert acc.ready(now, lambda tp: True)[0] == [TP]  # flush: no more lingering
    assert len(acc.drain(TP, now, 10, 1 << 20)) == 1


def test_drain_respects_max_batches_and_bytes() -> None:
    acc = make_accumulator(batch_size=1024, linger_ms=0)
    for _ in range(100):
        append(acc, b"y" * 100)
    now = time.monotonic() + 1
    assert len(acc.drain(TP, now, 2, 1 << 20)) == 2
    assert len(acc.drain(TP, now, 10, 1500)) == 1  # a second batch would pass max_bytes
    assert acc.drain(TP, now, 0, 1 << 20) == []


def test_buffer_pool_blocks_then_raises_or_wakes() -> None:
    pool = BufferPool(1000)
    pool.reserve(800, 0.1)
    started = time.monotonic()
    with pytest.raises(BufferExhaustedError, match="buffer_memory=1000"):
        pool.reserve(400, 0.2)
    assert 0.15 < time.monotonic() - started < 2
    threading.Timer(0.1, pool.release, args=(800,)).start()
    pool.reserve(400, 5)  # woken by the release
    assert pool.available == 600

    async def reserve_async() -> None:
        asyncio.get_running_loop().call_later(0.05, pool.release, 400)
        await pool.reserve_async(900, 5)

    asyncio.run(reserve_async())
    assert pool.available == 100


def test_restamp_keeps_a_valid_crc() -> None:
    acc = make_accumulator()
    for _ in range(5):
        append(acc, b"z" * 10)
    batch = acc.queued(TP)[0]
    data = batch.build(7, 0, 100)
    assert read_header(data).base_sequence == 100
    moved = restamp(data, 7, 3, 42)
    header = validate_batch(moved, 1 << 20)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (7, 3, 42)


def test_closed_accumulator_refuses_records() -> None:
    acc = make_accumulator()
    append(acc, b"a")
    acc.closing = True
    with pytest.raises(ProducerClosedError):
        append(acc, b"b")


def test_config_validation() -> None:
    config = build_config(ProducerConfig, {"bootstrap.servers": "a:1, b:2", "linger.ms": 7}, {"acks": 1})
    assert config.bootstrap_servers == ["a:1", "b:2"] and config.linger_ms == 7
    assert config.required_acks == 1 and not config.idempotent  # idempotence needs acks=all
    assert build_config(ProducerConfig, None, {"bootstrap_servers": ["a:1"]}).idempotent
    with pytest.raises(KafkaConfigurationError, match="enable_idempotence"):
        build_config(ProducerConfig, None, {"bootstrap_servers": "a:1", "acks": 0, "enable_idempotence": True})
    with pytest.raises(KafkaConfigurationError, match="acks"):
        build_config(ProducerConfig, None, {"bootstrap_servers": "a:1", "acks": 2})
    with pytest.raises(KafkaConfigurationError, match="compression_type"):
        build_config(ProducerConfig, None, {"bootstrap_servers": "a:1", "compression_type": "brotli"})
    with pytest.raises(KafkaConfigurationError, match="delivery_timeout_ms"):
        build_config(ProducerConfig, None, {"bootstrap_servers": "a:1", "delivery_timeout_ms": 10})


# ---------------------------------------------------------------------- sender against the fake broker
def run_with_fake(broker: FakeBroker, body: Callable[[ProducerCore], Awaitable[None]], **settings: object) -> None:
    async def main() -> None:
        config = build_config(ProducerConfig, None, {"bootstrap_servers": "fake:1", "retry_backoff_ms": 1,
                                                     "retry_backoff_max_ms": 5, **settings})
        core = ProducerCore(config)
        core.pool.call = broker.call  # type: ignore[method-assign]
        await core.start()
        try:
            await body(core)
        finally:
            await core.close(10)

    asyncio.run(asyncio.wait_for(main(), 60))


async def send(core: ProducerCore, value: bytes, partition: int) -> FutureRecordMetadata:
    meta = core.cached_topic("t") or await core.wait_topic("t")
    tp = core.choose_partition(meta, None, partition)
    future = core.append_fast(tp, None, None, value, [])
    if future is None:
        reserve = core.accumulator.reservation_for(len(value) + 100)
        await core.buffer.reserve_async(reserve, 10)
        future = core.append_reserved(tp, None, None, value, [], reserve)
    return future


@pytest.mark.parametrize("seed", range(SEEDS))
def test_idempotent_retries_never_duplicate_or_reorder(seed: int) -> None:
    broker = FakeBroker(seed=seed, faults=Faults(before_append=0.15, after_append=0.15, max_delay_s=0.003))
    futures: list[FutureRecordMetadata] = []

    async def body(core: ProducerCore) -> None:
        for i in range(3000):
            futures.append(await send(core, b"%d" % i, i % 2))
            if i % 200 == 0:
                await asyncio.sleep(0.001)
        await core.flush(30)

    run_with_fake(broker, body, batch_size=256, linger_ms=1)
    errors = [f.exception(0) for f in futures if f.exception(0) is not None]
    assert not errors, f"{len(errors)} failed, first: {errors[0]!r}"
    for partition in (0, 1):
        values = [int(v) for _, v in broker.logs[partition]]  # type: ignore[arg-type]
        assert values == list(range(partition, 3000, 2)), f"partition {partition}: duplicate, gap or reorder"
    for i, f in enumerate(futures):
        md = f.get(0)
        assert broker.logs[md.partition][md.offset][1] == b"%d" % i
    assert broker.lost_answers > 0 and broker.duplicates > 0  # answers lost, retries recognised


def test_a_record_too_large_fails_alone_and_the_rest_keep_their_order() -> None:
    broker = FakeBroker(partitions=1, max_message_bytes=1000)
    futures: list[FutureRecordMetadata] = []

    async def body(core: ProducerCore) -> None:
        for i in range(60):
            futures.append(await send(core, b"x" * 1200 if i == 30 else b"%d" % i, 0))
        await core.flush(30)

    run_with_fake(broker, body, batch_size=16384, linger_ms=20)
    errors = [f.exception(0) for f in futures]
    assert isinstance(errors[30], RecordTooLargeError)
    assert all(e is None for i, e in enumerate(errors) if i != 30)
    assert [v for _, v in broker.logs[0]] == [b"%d" % i for i in range(60) if i != 30]
    assert [f.get(0).offset for i, f in enumerate(futures) if i != 30] == list(range(59))


def test_close_with_timeout_fails_what_is_left() -> None:
    broker = FakeBroker(partitions=1, faults=Faults(before_append=1.0))  # never succeeds
    futures: list[FutureRecordMetadata] = []

    async def body(core: ProducerCore) -> None:
        for i in range(100):
            futures.append(await send(core, b"%d" % i, 0))
        await core.close(0.2)
        with pytest.raises(ProducerClosedError):
            await send(core, b"late", 0)

    run_with_fake(broker, body)
    assert all(f.done() for f in futures)
    assert all(f.exception(0) is not None for f in futures)
    assert broker.logs[0] == []


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_round_trip(codec: str) -> None:
    from aiokafka import codec as codecs
    from aiokafka.record.memory_records import MemoryRecords

    available = {"gzip": codecs.has_gzip, "snappy": codecs.has_snappy, "lz4": codecs.has_lz4,
                 "zstd": codecs.has_zstd}[codec]()
    if not available:
        with pytest.raises(KafkaConfigurationError, match="cramjam"):
            build_config(ProducerConfig, None, {"bootstrap_servers": "a:1", "compression_type": codec})
        pytest.skip(f"{codec} needs the optional 'cramjam' package")
    config = build_config(ProducerConfig, None, {"bootstrap_servers": "a:1", "compression_type": codec})
    acc = RecordAccumulator(batch_size=1 << 20, compression=config.compression_codec, linger_ms=0,
                            delivery_timeout_ms=60_000, pool=BufferPool(1 << 24), on_new_batch=lambda: None)
    for i in range(200):
        append(acc, b"value-%d" % i * 20)
    (batch,) = acc.queued(TP)
    data = batch.build(1, 0, 0)
    assert len(data) < 200 * 100  # compressed
    assert read_header(data).compression == config.compression_codec
    decoded = MemoryRecords(data).next_batch()
    assert decoded is not None
    assert [r.value for r in decoded] == [b"value-%d" % i * 20 for i in range(200)]
