"""`raftlog produce` and `raftlog consume`: kafka-console-producer/consumer, built on
the client SDK (the same Producer and Consumer applications use)."""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import click

from raftlog.cli.common import bootstrap_option, bootstrap_servers, fail
from raftlog.client import Consumer, Producer, TopicPartition
from raftlog.client.errors import KafkaException, UnknownTopicOrPartitionError
from raftlog.errors import KafkaError


@click.command()
@click.argument("topic")
@bootstrap_option
@click.option("--acks", default="all", show_default=True, type=click.Choice(["all", "1", "0"]))
@click.option("--key-separator", default=None, metavar="SEP",
              help="Split each line at the first SEP into key and value.")
@click.option("--partition", default=None, type=click.IntRange(0), help="Send every record to this partition.")
@click.option("--timeout-ms", default=30_000, show_default=True, type=click.IntRange(100),
              help="How long a record may take to be acknowledged (Kafka's delivery.timeout.ms).")
def produce(topic: str, bootstrap_server: str | None, acks: str, key_separator: str | None,
            partition: int | None, timeout_ms: int) -> None:
    """Send each line of stdin as a record; exit non-zero if any was not acknowledged."""
    servers = bootstrap_servers(bootstrap_server)
    failures: list[str] = []

    def on_delivery(err: Exception | None, _metadata: Any) -> None:
        if err is not None:
            failures.append(str(err))

    try:
        # Kafka's rule: delivery.timeout.ms >= linger.ms + request.timeout.ms.
        with Producer(bootstrap_servers=servers, acks=acks if acks == "all" else int(acks), linger_ms=5,
                      delivery_timeout_ms=timeout_ms, request_timeout_ms=min(timeout_ms // 2, 30_000),
                      max_block_ms=timeout_ms) as producer:
            sent = 0
            for line in sys.stdin:
                text = line.rstrip("\n")
                key: bytes | None = None
                if key_separator is not None and key_separator in text:
                    key_text, text = text.split(key_separator, 1)
                    key = key_text.encode()
                producer.send(topic, text.encode(), key=key, partition=partition, on_delivery=on_delivery)
                sent += 1
            producer.flush(timeout_ms / 1000 + 5)
    except (KafkaException, KafkaError) as err:
        fail(str(err))
        return
    if failures:
        fail(f"{len(failures)} of {sent} records were not acknowledged; first error: {failures[0]}")


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


@click.command()
@click.argument("topic")
@bootstrap_option
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset (default: the end).")
@click.option("--partition", default=None, type=click.IntRange(0), help="Read only this partition.")
@click.option("--offset", default=None, type=click.IntRange(0), help="Start at this offset (needs --partition).")
@click.option("--max-messages", default=None, type=click.IntRange(1), help="Exit after this many records.")
@click.option("--timeout-ms", default=None, type=click.IntRange(1),
              help="Exit after this long without a new record (default: wait forever).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per record: topic, partition, offset, key, value, timestamp.")
def consume(topic: str, bootstrap_server: str | None, from_beginning: bool, partition: int | None,
            offset: int | None, max_messages: int | None, timeout_ms: int | None, as_json: bool) -> None:
    """Print the records of TOPIC (values, or JSON lines)."""
    if offset is not None and partition is None:
        raise click.UsageError("--offset needs --partition")
    servers = bootstrap_servers(bootstrap_server)
    try:
        consumer = Consumer(bootstrap_servers=servers,
                            auto_offset_reset="earliest" if from_beginning else "latest")
    except (KafkaException, KafkaError) as err:
        fail(str(err))
        return
    printed = 0
    try:
        # Kafka's consumer waits forever for a topic that does not exist; the console
        # tool says so and exits instead (UNKNOWN_TOPIC_OR_PARTITION).
        partitions = consumer.partitions_for_topic(topic)
        if partition is not None and partition not in partitions:
            raise UnknownTopicOrPartitionError(
                f"topic {topic!r} has no partition {partition} (it has {len(partitions)})")
        if partition is None:
            consumer.subscribe([topic])
        else:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            if offset is not None:
                consumer.seek(tp, offset)
            elif from_beginning:
                consumer.seek_to_beginning(tp)
        idle_ms = 0
        while max_messages is None or printed < max_messages:
            poll_ms = 500 if timeout_ms is None else min(500, timeout_ms - idle_ms)
            records = consumer.poll(timeout_ms=max(1, poll_ms),
                                    max_records=None if max_messages is None else max_messages - printed)
            if not records:
                idle_ms += max(1, poll_ms)
                if timeout_ms is not None and idle_ms >= timeout_ms:
                    break
                continue
            idle_ms = 0
            for record in records:
                if as_json:
                    click.echo(json.dumps({
                        "topic": record.topic, "partition": record.partition, "offset": record.offset,
                        "key": _text(record.key), "value": _text(record.value), "timestamp": record.timestamp,
                    }))
                else:
                    click.echo(_text(record.value) or "")
                printed += 1
    except (KafkaException, KafkaError) as err:
        fail(str(err))
    finally:
        consumer.close()
