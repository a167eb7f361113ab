"""A consumer reading a corrupt batch (hardening finding 2): every good record before
it, then a typed CorruptRecordError naming topic, partition and offset; `raftlog
consume` prints one error line and exits non-zero.

The corrupt batch is planted in the leader's log past produce validation
(``Partition.append_as_leader`` with an unvalidated batch), as disk corruption or a
broker bug would leave it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from raftlog.cli.main import main as cli_main
from raftlog.client.aio_consumer import AIOConsumer
from raftlog.client.errors import CorruptRecordError
from raftlog.client.types import ConsumerRecord, TopicPartition
from raftlog.node.broker.log_validator import ValidatedBatch
from raftlog.node.broker.replica_manager import LogFactory
from raftlog.records import build_batch, read_header
from tests.broker.harness import Cluster, poll, run
from tests.hardening.test_produce_validation import recrc, with_codec


def flip_crc(data: bytes) -> bytes:
    out = bytearray(data)
    out[-1] ^= 0xFF
    return bytes(out)


def bad_gzip(data: bytes) -> bytes:
    """Valid CRC, gzip codec bit, payload not gzip."""
    return with_codec(data, 1)


def garbled_record(data: bytes) -> bytes:
    """Valid CRC, uncompressed, a record whose length varint runs past the batch."""
    out = bytearray(data)
    out[61] = 0x7E  # first record's length varint: 63 bytes, more than is there
    return recrc(out)


async def plant(c: Cluster, topic: str, data: bytes) -> None:
    p = c[1].partition(topic)
    await p.append_as_leader([ValidatedBatch(read_header(data), memoryview(data))], 1)


async def drain(consumer: AIOConsumer, until: Callable[[list[ConsumerRecord]], bool],
                timeout_s: float = 10.0) -> tuple[list[ConsumerRecord], BaseException | None]:
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            got += await consumer.poll(timeout_ms=200)
        except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
            return got, exc
        if until(got):
            return got, None
    return got, None


@pytest.mark.parametrize("corrupt", [flip_crc, bad_gzip, garbled_record], ids=["crc", "gzip", "record"])
def test_consumer_gets_good_records_then_typed_error(tmp_path: Path, log_factory: LogFactory | None,
                                                     corrupt: Callable[[bytes], bytes]) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, size=1, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            await c.produce(1, "t", build_batch([(None, b"a"), (None, b"b")]), acks=1)
            await c.produce(1, "t", build_batch([(None, b"c")]), acks=1)
            await plant(c, "t", corrupt(build_batch([(None, b"x" * 20), (None, b"y" * 20)])))
            await c.produce(1, "t", build_batch([(None, b"after")]), acks=1)
            await poll(lambda: c[1].partition("t").high_watermark == 6, what="hw")
            tp = TopicPartition("t", 0)
            async with AIOConsumer(bootstrap_servers=f"127.0.0.1:{c[1].port}", auto_offset_reset="earliest",
                                   max_poll_records=1000) as consumer:
                consumer.assign([tp])
                got, error = await drain(consumer, lambda g: len(g) > 3)
                assert [r.value for r in got] == [b"a", b"b", b"c"], (got, error)
                assert isinstance(error, CorruptRecordError), repr(error)
                assert (error.topic, error.partition, error.offset) == ("t", 0, 3), error
                assert "t-0" in str(error) and "offset 3" in str(error)
                # Sticky: the next poll raises again, the position stays at the bad batch.
                with pytest.raises(CorruptRecordError):
                    await consumer.poll(timeout_ms=200)
                assert await consumer.position(tp) == 3
                # Skipping it is the caller's choice (seek past, as in Kafka).
                consumer.seek(tp, 5)
                got, error = await drain(consumer, lambda g: len(g) >= 1)
                assert error is None and [r.value for r in got] == [b"after"]

            # The CLI: the good records, then one error line, exit code non-zero.
            result = await asyncio.to_thread(
                CliRunner().invoke, cli_main,
                ["consume", "t", "--bootstrap-server", f"127.0.0.1:{c[1].port}", "--from-beginning",
                 "--partition", "0", "--timeout-ms", "5000"],
            )
            assert result.exit_code not in (0, None), result.output
            assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
            assert result.stdout.splitlines() == ["a", "b", "c"], result.output
            errors = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(errors) == 1 and "CORRUPT_MESSAGE" in errors[0] and "offset 3" in errors[0], result.stderr
            assert "Traceback" not in result.output

    run(scenario(), 120)


def test_check_crcs_defaults_to_true() -> None:
    """Kafka's consumer verifies the CRC of every fetched batch by default (check.crcs=true)."""
    from raftlog.client.config import ConsumerConfig

    assert ConsumerConfig().check_crcs is True
