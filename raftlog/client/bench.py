"""SDK throughput: ``python -m raftlog.client.bench --bootstrap-servers h:p[,h:p...]``.

Measures, for each (record count, record size) asked:
  * encode: records/s of the producer's own work with no network (serialize,
    partition, append to batches, build RecordBatch v2 bytes) — its CPU cost per record;
  * produce: records/s and MB/s through ``Producer`` with ``acks=all`` into a
    fresh topic (3 partitions, replication factor 3 by default), until every
    future is resolved;
  * consume: records/s and MB/s reading them all back with ``Consumer``.
Each phase stops at ``--max-seconds`` and reports what it did by then.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from raftlog.client.accumulator import BufferPool, RecordAccumulator
from raftlog.client.admin import AdminClient
from raftlog.client.config import compression_codec
from raftlog.client.consumer import Consumer
from raftlog.client.partitioner import DefaultPartitioner
from raftlog.client.producer import Producer
from raftlog.client.types import TopicPartition


@dataclass
class Result:
    """One measured phase."""

    phase: str
    records: int
    record_bytes: int
    seconds: float
    complete: bool
    note: str = ""

    @property
    def records_per_s(self) -> float:
        """Records per second."""
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        """Payload megabytes (10^6 bytes of values) per second."""
        return self.records * self.record_bytes / 1e6 / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        """A human-readable line."""
        done = "" if self.complete else "  (stopped at the time limit)"
        note = f"  [{self.note}]" if self.note else ""
        return (f"{self.phase:8s} {self.records:>9,d} x {self.record_bytes:>5d} B  {self.seconds:7.2f} s"
                f"  {self.records_per_s:>11,.0f} rec/s  {self.mb_per_s:7.1f} MB/s{done}{note}")


def bench_encode(count: int, size: int, batch_size: int, compression: str | None, max_s: float) -> Result:
    """The producer's per-record work without a network: append + build batches."""
    value = b"v" * size
    pool = BufferPool(1 << 40)
    accumulator = RecordAccumulator(batch_size=batch_size, compression=compression_codec(compression), linger_ms=10**9,
                                    delivery_timeout_ms=120_000, pool=pool, on_new_batch=lambda: None)
    partitioner = DefaultPartitioner()
    tps = [TopicPartition("bench", p) for p in range(3)]
    started = time.perf_counter()
    deadline = started + max_s
    done = 0
    for i in range(count):
        tp = tps[partitioner.partition("bench", None, 3, [0, 1, 2])]
        if accumulator.try_append(tp, None, None, value, []) is None:
            reserve = accumulator.reservation_for(size + 100)
            pool.try_reserve(reserve)
            accumulator.append_new_batch(tp, None, None, value, [], reserve)
            partitioner.batch_closed("bench", tp.partition, 3, [0, 1, 2])
            for full in tps:  # build what is full, as the sender would
                for batch in accumulator.drain(full, time.monotonic(), 1 << 20, 1 << 30):
                    batch.build(1, 0, 0)
                    accumulator.finished(batch)
        done = i + 1
        if done % 10_000 == 0 and time.perf_counter() > deadline:
            break
    accumulator.flushing = 1
    for tp in tps:
        for batch in accumulator.drain(tp, time.monotonic(), 1 << 20, 1 << 30):
            batch.build(1, 0, 0)
    return Result("encode", done, size, time.perf_counter() - started, done == count)


def bench_produce(bootstrap: str, topic: str, count: int, size: int, max_s: float, **settings: Any) -> Result:
    """Send ``count`` records and wait for every acknowledgement."""
    value = b"v" * size
    producer = Producer(bootstrap_servers=bootstrap, acks="all", **settings)
    started = time.perf_counter()
    deadline = started + max_s
    done = 0
    try:
        send = producer.send
        for i in range(count):
            send(topic, value)
            done = i + 1
            if done % 10_000 == 0 and time.perf_counter() > deadline:
                break
        send_s = time.perf_counter() - started
        producer.flush(timeout=max(30.0, max_s))
        elapsed = time.perf_counter() - started
        stats = producer.metrics()
    finally:
        producer.close()
    if stats["batches_failed"]:
        raise SystemExit(f"produce: {stats['batches_failed']} batch(es) failed: {stats}")
    result = Result("produce", done, size, elapsed, done == count)
    result.note = f"send() returned after {send_s:.2f} s ({send_s / max(done, 1) * 1e6:.1f} us/record)"
    return result


def bench_consume(bootstrap: str, topic: str, partitions: int, count: int, size: int, max_s: float) -> Result:
    """Read ``count`` records back from the beginning."""
    consumer = Consumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        started = time.perf_counter()
        deadline = started + max_s
        done = 0
        while done < count and time.perf_counter() < deadline:
            done += len(consumer.poll(timeout_ms=1000))
        elapsed = time.perf_counter() - started
    finally:
        consumer.close()
    return Result("consume", done, size, elapsed, done >= count)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; prints a table (or JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m raftlog.client.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093")
    parser.add_argument("--runs", default="1000000x100,100000x1024",
                        help="comma-separated COUNTxSIZE pairs (default: %(default)s)")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--replication-factor", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="per phase")
    parser.add_argument("--linger-ms", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16_384)
    parser.add_argument("--compression", default=None)
    parser.add_argument("--encode-only", action="store_true", help="no cluster: measure encoding alone")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: list[Result] = []
    admin = None if args.encode_only else AdminClient(bootstrap_servers=args.bootstrap_servers)
    try:
        for run in args.runs.split(","):
            count_text, _, size_text = run.partition("x")
            count, size = int(count_text), int(size_text)
            results.append(bench_encode(count, size, args.batch_size, args.compression, args.max_seconds))
            if admin is not None:
                topic = f"bench-{uuid.uuid4().hex[:8]}"
                admin.create_topic(topic, args.partitions, args.replication_factor)
                produced = bench_produce(args.bootstrap_servers, topic, count, size, args.max_seconds,
                                         linger_ms=args.linger_ms, batch_size=args.batch_size,
                                         compression_type=args.compression)
                results.append(produced)
                results.append(bench_consume(args.bootstrap_servers, topic, args.partitions, produced.records,
                                             size, args.max_seconds))
            for result in results[-3 if admin is not None else -1:]:
                if not args.json:
                    sys.stdout.write(result.line() + "\n")
                    sys.stdout.flush()
    finally:
        if admin is not None:
            admin.close()
    if args.json:
        sys.stdout.write(json.dumps([asdict(r) | {"records_per_s": r.records_per_s, "mb_per_s": r.mb_per_s}
                                     for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
