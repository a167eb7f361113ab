"""Named listeners (Kafka's listeners/advertised.listeners): peers use the
inter-broker listener; Metadata answers with the listener the client came in on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from raftlog.cli.local_cluster import free_ports, wait_for
from raftlog.v1 import admin_pb2, admin_pb2_grpc, broker_pb2, broker_pb2_grpc
from tests.cluster.test_cli import assert_one_line_error, raftlog

pytestmark = pytest.mark.cluster


def metadata(address: str) -> broker_pb2.MetadataResponse | None:
    with grpc.insecure_channel(address) as channel:
        try:
            response: broker_pb2.MetadataResponse = broker_pb2_grpc.BrokerStub(channel).Metadata(
                broker_pb2.MetadataRequest(), timeout=2)
            return response
        except grpc.RpcError:
            return None


def test_metadata_answers_with_the_listener_the_client_used(tmp_path: Path) -> None:
    internal = free_ports("127.0.0.1", 3)
    external = free_ports("127.0.0.1", 3)
    voters = ",".join(f"{i + 1}@127.0.0.1:{port}" for i, port in enumerate(internal))
    procs = []
    try:
        for i in range(3):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "raftlog.cli", "node", "start", "--node-id", str(i + 1), "--voters", voters,
                 "--listeners", f"INTERNAL://127.0.0.1:{internal[i]},EXTERNAL://127.0.0.1:{external[i]}",
                 "--advertised-listeners", f"EXTERNAL://localhost:{external[i]}",
                 "--data-dir", str(tmp_path / f"n{i + 1}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            ))

        def three_live(address: str) -> broker_pb2.MetadataResponse | None:
            md = metadata(address)
            return md if md is not None and len([b for b in md.brokers if not b.fenced]) == 3 else None

        via_external = wait_for(lambda: three_live(f"127.0.0.1:{external[0]}"), 60, "3 brokers via EXTERNAL")
        assert sorted((b.host, b.port) for b in via_external.brokers) == [("localhost", p) for p in sorted(external)]
        via_internal = wait_for(lambda: three_live(f"127.0.0.1:{internal[1]}"), 30, "3 brokers via INTERNAL")
        assert sorted((b.host, b.port) for b in via_internal.brokers) == [("127.0.0.1", p) for p in sorted(internal)]
        with grpc.insecure_channel(f"127.0.0.1:{external[2]}") as channel:
            cluster = admin_pb2_grpc.AdminStub(channel).DescribeCluster(admin_pb2.DescribeClusterRequest(), timeout=5)
        assert cluster.controller_id in (1, 2, 3)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--listeners", "INTERNAL://127.0.0.1:1", "--listen", "127.0.0.1:1"], "give one of them"),
        (["--listeners", "EXTERNAL://127.0.0.1:1"], "INTERNAL is not among the listeners"),
        (["--listeners", "INTERNAL://127.0.0.1:1,INTERNAL://127.0.0.1:2"], "twice"),
        (["--listeners", "127.0.0.1:1"], "NAME://HOST:PORT"),
        (["--listeners", "INTERNAL://127.0.0.1:1", "--advertised-listeners", "OTHER://h:1"], "not among the listeners"),
    ],
)
def test_bad_listener_flags(tmp_path: Path, args: list[str], fragment: str) -> None:
    result = raftlog("node", "start", "--node-id", "1", "--voters", "1@127.0.0.1:9", "--data-dir", str(tmp_path), *args)
    assert_one_line_error(result, fragment)
