"""Smoke test of the image and the container harness: three `raftlog:dev` containers on
their own Docker network, used from the host through the EXTERNAL listener.

The cluster elects a leader; the host CLI creates a topic with replication factor 3;
records are produced and fetched from the host (metadata must send the host to the
published ports); the active controller's container is SIGKILLed and a new one is
elected while writes go on; so is a partition leader's; a node cut off the network is
reconnected and catches up; nothing acknowledged is missing at any step.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster import dataplane
from tests.containers.harness import ContainerCluster, wait_for
from raftlog.errors import KafkaError
from raftlog.v1 import broker_pb2

pytestmark = [pytest.mark.containers, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
TOPIC = "smoke"
PARTITIONS = 3


def raftlog_cli(*args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    """The `raftlog` command line, run on the host as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "raftlog.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout_s
    )


class Ledger:
    """What the cluster acknowledged, per partition: (offset, value)."""

    def __init__(self, cluster: ContainerCluster) -> None:
        self.cluster = cluster
        self.acked: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(PARTITIONS)}

    def produce_round(self, tag: str, retry_for_s: float) -> None:
        for p in range(PARTITIONS):
            value = f"{tag}-p{p}".encode()
            offset = dataplane.produce(self.cluster, TOPIC, p, [value], acks=-1, retry_for_s=retry_for_s)  # type: ignore[arg-type]
            self.acked[p].append((offset, value))

    def check_all_readable(self) -> None:
        """Every acknowledged record reads back from its partition's leader."""
        for p, acked in self.acked.items():
            missing: set[tuple[int, bytes]] = set(acked)

            def read(p: int = p) -> bool:
                nonlocal missing
                # A node that just restarted may still name an old leader: ask again.
                leader = dataplane.leader_address(self.cluster, TOPIC, p)  # type: ignore[arg-type]
                if leader is None:
                    return False
                try:
                    fetched = dataplane.fetch_all(leader, TOPIC, p)
                except KafkaError:
                    return False
                missing = set(acked) - set(fetched.records)
                return not missing

            try:
                wait_for(read, 30, f"{TOPIC}-{p} read from its leader", interval_s=0.2)
            except TimeoutError:
                pytest.fail(f"{TOPIC}-{p}: acknowledged but never read back: {sorted(missing)}")


def test_container_cluster_elects_serves_and_survives_faults(container_cluster: ContainerCluster) -> None:
    cluster = container_cluster
    started = time.monotonic()

    # --- a leader, seen from the host through the CLI --------------------------------
    cluster.wait_for_leader(timeout_s=30)
    out = raftlog_cli("quorum", "describe", "--json", "--bootstrap-server", cluster.bootstrap_servers)
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert view["leader_id"] in (1, 2, 3)
    # The quorum runs on the INTERNAL listener: voters are the containers' names.
    assert sorted(v["address"] for v in view["voters"]) == ["node1:9091", "node2:9091", "node3:9091"]

    # --- a topic with replication factor 3, created by the host CLI --------------------
    def create() -> bool:
        res = raftlog_cli("topic", "create", TOPIC, "--partitions", str(PARTITIONS), "--replication-factor", "3",
                          "--config", "min.insync.replicas=2", "--if-not-exists",
                          "--bootstrap-server", cluster.bootstrap_servers)
        return res.returncode == 0

    wait_for(create, 60, "topic created from the host", interval_s=0.5)
    topic = dataplane.create_topic(cluster, TOPIC, PARTITIONS, 3)  # type: ignore[arg-type]  # exists: waits until served
    assert all(len(p.replicas) == 3 for p in topic.partitions)

    # Metadata answers a host client with the EXTERNAL addresses: the published ports.
    md = dataplane.rpc(cluster.nodes[0].address, "broker", "Metadata", broker_pb2.MetadataRequest(topics=[TOPIC]))
    assert isinstance(md, broker_pb2.MetadataResponse)
    assert {f"{b.host}:{b.port}" for b in md.brokers} == set(cluster.bootstrap(only_alive=False))

    ledger = Ledger(cluster)
    ledger.produce_round("first", retry_for_s=30)
    ledger.check_all_readable()

    # --- SIGKILL the active controller: a new one is elected, writes go on -------------
    controller = cluster.wait_for_leader()
    killed_at = time.monotonic()
    cluster.kill(controller)
    new_controller = cluster.wait_for_leader(timeout_s=30, not_id=controller)
    elected_s = time.monotonic() - killed_at
    ledger.produce_round("after-kill", retry_for_s=60)
    writes_s = time.monotonic() - killed_at
    ledger.check_all_readable()
    cluster.start_node(controller)  # same container, same volume: it rejoins

    # --- SIGKILL a partition leader that is not the controller -------------------------
    def leaders_now() -> dict[int, int] | None:
        desc = dataplane.describe(cluster, TOPIC)  # type: ignore[arg-type]
        leaders = {p.partition: p.leader for p in desc.partitions}
        return leaders if all(leader > 0 for leader in leaders.values()) else None

    leaders = wait_for(leaders_now, 30, f"every {TOPIC} partition led")
    partition_leader = next((nid for nid in leaders.values() if nid != new_controller), None)
    leader_writes_s = 0.0
    if partition_leader is not None:
        killed_at = time.monotonic()
        cluster.kill(partition_leader)
        ledger.produce_round("after-leader-kill", retry_for_s=60)
        leader_writes_s = time.monotonic() - killed_at
        ledger.check_all_readable()
        cluster.start_node(partition_leader)

    # --- cut a node off the network, write without it, reconnect: it catches up --------
    # The node that was neither killed nor elected: it leads a partition, most likely.
    victim = next(n.node_id for n in cluster.nodes if n.node_id not in (controller, new_controller))
    cluster.disconnect(victim)
    ledger.produce_round("partitioned", retry_for_s=60)
    cluster.connect(victim)

    def caught_up() -> bool:
        desc = dataplane.describe(cluster, TOPIC)  # type: ignore[arg-type]
        if not all(victim in p.isr for p in desc.partitions):
            return False
        view = cluster.describe_quorum()
        if view is None:
            return False
        voter = next(v for v in view["voters"] if v["node_id"] == victim)
        return bool(voter["lag"] == 0 and voter["log_end_offset"] >= view["high_watermark"])

    wait_for(caught_up, 60, f"node {victim} back in every ISR with no quorum lag", interval_s=0.25)
    ledger.produce_round("healed", retry_for_s=30)
    ledger.check_all_readable()
    cluster.wait_healthy()

    print(f"container smoke: controller {controller} killed -> {new_controller} elected in {elected_s:.1f}s, "
          f"writes to every partition again after {writes_s:.1f}s; partition leader {partition_leader} killed, "
          f"writes again after {leader_writes_s:.1f}s; "
          f"node {victim} partitioned and caught up; "
          f"total {time.monotonic() - started:.1f}s")
