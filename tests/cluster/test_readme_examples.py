"""The README's producer and consumer examples run as written against a cluster
(only the addresses are swapped for this test's cluster)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.conftest import ClusterFactory

pytestmark = pytest.mark.cluster

README = Path(__file__).resolve().parents[2] / "README.md"
MAKE_UP_SERVERS = "127.0.0.1:9091,127.0.0.1:9092,127.0.0.1:9093"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_producer_and_consumer_work(make_cluster: ClusterFactory) -> None:
    blocks = python_blocks()
    assert len(blocks) >= 2, "the README shows a producer and a consumer"
    producer, consumer = blocks[0], blocks[1]
    assert "Producer(" in producer and "Consumer(" in consumer
    assert len(producer.strip().splitlines()) <= 12 and len(consumer.strip().splitlines()) <= 12
    cluster = make_cluster()
    cluster.wait_for_brokers()
    servers = ",".join(cluster.addresses)

    def run(code: str) -> subprocess.CompletedProcess[str]:
        assert MAKE_UP_SERVERS in code
        return subprocess.run([sys.executable, "-c", code.replace(MAKE_UP_SERVERS, servers)],
                              capture_output=True, text=True, timeout=120)

    produced = run(producer)
    assert produced.returncode == 0, produced.stderr
    consumed = run(consumer)
    assert consumed.returncode == 0, consumed.stderr
    lines = consumed.stdout.splitlines()
    assert sorted(line.split(" ", 3)[3] for line in lines) == sorted(f"order {i}" for i in range(10))
