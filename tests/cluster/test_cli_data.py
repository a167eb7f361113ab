"""`raftlog produce` / `consume` / `topic` / `cluster status` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cluster.conftest import ClusterFactory
from tests.cluster.test_cli import assert_one_line_error

pytestmark = pytest.mark.cluster


def run(*args: str, stdin: str = "", timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftlog.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def test_topics_produce_consume_through_the_cli(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster()
    cluster.wait_for_brokers()
    bootstrap = ",".join(cluster.addresses)
    created = run("topic", "create", "orders", "--partitions", "3", "--replication-factor", "3",
                  "--config", "min.insync.replicas=2", "--bootstrap-server", bootstrap)
    assert created.returncode == 0, created.stderr
    assert_one_line_error(run("topic", "create", "orders", "--bootstrap-server", bootstrap), "TOPIC_ALREADY_EXISTS")
    assert_one_line_error(run("topic", "create", "bad name", "--bootstrap-server", bootstrap), "INVALID_TOPIC")

    listed = run("topic", "list", "--json", "--bootstrap-server", bootstrap)
    assert json.loads(listed.stdout) == ["orders"]
    described = json.loads(run("topic", "describe", "orders", "--json", "--bootstrap-server", bootstrap).stdout)
    assert {"name", "topic_id", "configs", "partitions"} <= described.keys()
    assert described["configs"]["min.insync.replicas"] == "2"
    for p in described["partitions"]:
        assert {"partition", "leader", "leader_epoch", "replicas", "isr"} <= p.keys()
        assert sorted(p["replicas"]) == [1, 2, 3]

    lines = [f"k{i % 4}:value-{i}" for i in range(40)]
    produced = run("produce", "orders", "--key-separator", ":", "--bootstrap-server", bootstrap,
                   stdin="\n".join(lines) + "\n")
    assert produced.returncode == 0, produced.stderr
    consumed = run("consume", "orders", "--from-beginning", "--max-messages", "40", "--timeout-ms", "20000",
                   "--json", "--bootstrap-server", bootstrap)
    assert consumed.returncode == 0, consumed.stderr
    records = [json.loads(line) for line in consumed.stdout.splitlines()]
    assert sorted(r["value"] for r in records) == sorted(line.split(":", 1)[1] for line in lines)
    for r in records:
        assert {"topic", "partition", "offset", "key", "value", "timestamp"} <= r.keys()
    by_key: dict[str, set[int]] = {}
    for r in records:
        by_key.setdefault(r["key"], set()).add(r["partition"])
    assert all(len(parts) == 1 for parts in by_key.values()), "one key, one partition"
    # Per partition, the order the producer wrote in (values increase).
    for part in {r["partition"] for r in records}:
        numbers = [int(r["value"].split("-")[1]) for r in records if r["partition"] == part]
        assert numbers == sorted(numbers)

    first = next(r for r in records if r["partition"] == 0)
    one = run("consume", "orders", "--partition", "0", "--offset", str(first["offset"]), "--max-messages", "1",
              "--timeout-ms", "10000", "--bootstrap-server", bootstrap)
    assert one.stdout.strip() == first["value"]
    # Nothing new: --timeout-ms ends the wait, exit 0.
    idle = run("consume", "orders", "--timeout-ms", "1500", "--bootstrap-server", bootstrap)
    assert idle.returncode == 0 and idle.stdout == ""

    status = json.loads(run("cluster", "status", "--json", "--bootstrap-server", bootstrap).stdout)
    assert [b["status"] for b in status["brokers"]] == ["live"] * 3
    assert status["controller_id"] in (1, 2, 3) and status["offline_partitions"] == []

    assert_one_line_error(run("produce", "missing", "--timeout-ms", "3000", "--bootstrap-server", bootstrap,
                              stdin="x\n"), "missing")
    deleted = run("topic", "delete", "orders", "--bootstrap-server", bootstrap)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(run("topic", "list", "--json", "--bootstrap-server", bootstrap).stdout) == []
