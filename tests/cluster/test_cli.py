"""The CLI as a user runs it: `cluster up`, `quorum describe`, and bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from raftlog.cli.local_cluster import LocalCluster, free_ports, wait_for

pytestmark = pytest.mark.cluster


def raftlog(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "raftlog.cli", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert fragment in result.stderr, result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 3, result.stderr


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_cluster_up_describe_and_ctrl_c(tmp_path: Path) -> None:
    base = free_ports("127.0.0.1", 1)[0]
    ports = list(range(base, base + 3))
    out_path = tmp_path / "up.out"
    with open(out_path, "w") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "raftlog.cli", "cluster", "up", "--base-port", str(base), "--data-dir",
             str(tmp_path / "data")],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: "Press Ctrl-C" in out_path.read_text() or up.poll() is not None, 60, "cluster up")
        text = out_path.read_text()
        assert up.poll() is None, text
        pids = [int(p) for p in re.findall(r"pid (\d+)", text)]
        assert len(pids) == 3 and text.count("leader ") == 1, text

        bootstrap = ",".join(f"127.0.0.1:{p}" for p in ports)
        described = raftlog("quorum", "describe", "--json", env={"RAFTLOG_BOOTSTRAP_SERVERS": bootstrap})
        assert described.returncode == 0, described.stderr
        view = json.loads(described.stdout)
        assert {"leader_id", "leader_epoch", "high_watermark", "voters"} <= view.keys()
        assert view["leader_id"] in (1, 2, 3) and view["leader_epoch"] >= 1
        assert sorted(v["node_id"] for v in view["voters"]) == [1, 2, 3]
        for voter in view["voters"]:
            assert {"node_id", "address", "log_end_offset", "lag", "last_fetch_ms_ago", "status"} <= voter.keys()
            assert voter["status"] == ("Leader" if voter["node_id"] == view["leader_id"] else "Follower")
        table = raftlog("quorum", "describe", "--bootstrap-server", f"127.0.0.1:{ports[1]}")
        assert table.returncode == 0 and "HighWatermark" in table.stdout, table.stderr

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, out_path.read_text()
        assert "all nodes stopped" in out_path.read_text()
        assert not any(pid_alive(p) for p in pids)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for pid in re.findall(r"pid (\d+)", out_path.read_text()):
            if pid_alive(int(pid)):
                os.kill(int(pid), signal.SIGKILL)


def test_cluster_up_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = raftlog("cluster", "up", "--base-port", str(port), "--data-dir", str(tmp_path))
    assert_one_line_error(result, "port already in use")


def test_quorum_describe_with_no_cluster_fails_cleanly() -> None:
    port = free_ports("127.0.0.1", 1)[0]
    result = raftlog("quorum", "describe", "--bootstrap-server", f"127.0.0.1:{port}", "--timeout-ms", "300")
    assert_one_line_error(result, "no node answered")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--node-id", "1", "--voters", "1@127.0.0.1"], "voters"),
        (["--node-id", "1", "--voters", "1@127.0.0.1:9091,1@127.0.0.1:9092"], "voters"),
        (["--node-id", "1", "--voters", "x@127.0.0.1:9091"], "voters"),
        (["--node-id", "4", "--voters", "1@127.0.0.1:9091,2@127.0.0.1:9092"], "4"),
    ],
)
def test_node_start_rejects_bad_flags(tmp_path: Path, args: list[str], fragment: str) -> None:
    port = free_ports("127.0.0.1", 1)[0]
    result = raftlog("node", "start", "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "d"), *args)
    assert_one_line_error(result, fragment)


def test_node_start_refuses_a_data_dir_of_another_cluster(tmp_path: Path) -> None:
    cluster = LocalCluster.layout(1, "127.0.0.1", free_ports("127.0.0.1", 1), tmp_path)
    cluster.start()
    try:
        cluster.wait_for_leader()
    finally:
        assert cluster.stop_all()[1] == 0
    data_dir = cluster.node(1).data_dir
    before = sorted(p.name for p in data_dir.rglob("*"))
    other_port = free_ports("127.0.0.1", 1)[0]
    result = raftlog(
        "node", "start", "--node-id", "1", "--listen", cluster.node(1).address, "--data-dir", str(data_dir),
        "--voters", f"1@{cluster.node(1).address},2@127.0.0.1:{other_port}",
    )
    assert_one_line_error(result, "cluster")
    assert sorted(p.name for p in data_dir.rglob("*")) == before  # nothing wiped


def test_node_start_refuses_an_unusable_data_dir(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    port = free_ports("127.0.0.1", 1)[0]
    result = raftlog("node", "start", "--node-id", "1", "--listen", f"127.0.0.1:{port}",
                     "--voters", f"1@127.0.0.1:{port}", "--data-dir", str(not_a_dir))
    assert_one_line_error(result, str(not_a_dir))
    assert not_a_dir.read_text() == "x"


def test_node_with_unreachable_peers_keeps_retrying(tmp_path: Path) -> None:
    ports = free_ports("127.0.0.1", 3)
    cluster = LocalCluster.layout(3, "127.0.0.1", ports, tmp_path)
    node = cluster.node(1)
    cluster.start(1)
    try:
        # It stays up, serves health, and says in its log that it cannot reach peers.
        wait_for(lambda: node.local_view() is not None, 30, "node 1 answering")
        wait_for(lambda: "127.0.0.1:%d" % ports[1] in node.log_path.read_text(), 30, "a log line about peer 2")
        assert node.alive
    finally:
        assert node.stop(timeout_s=15) == 0
