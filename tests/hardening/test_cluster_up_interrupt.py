"""Ctrl-C in the first moments of `raftlog cluster up` prints no traceback and exits
cleanly (hardening finding 5), whatever it was doing: still importing, spawning its
nodes, or already up. `cluster up` runs as a subprocess; each moment is found by polling
(/proc), never by sleeping.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

CLEAN_EXIT = (0, 130)  # 130: 128 + SIGINT, the shell's code for an interrupted command


def _free_port_run(count: int) -> int:
    """A base port with ``count`` free ports after it (best effort)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no free port run")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _maps(pid: int, needle: str) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _wait(condition: Callable[[], bool], proc: subprocess.Popen[bytes], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"cluster up exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
@pytest.mark.parametrize("moment", ["importing", "spawned", "first-line"])
def test_ctrl_c_early_in_cluster_up(tmp_path: Path, moment: str) -> None:
    nodes = 1  # one node is enough: the moments are in the parent
    base = _free_port_run(nodes)
    proc = subprocess.Popen(
        [sys.executable, "-m", "raftlog.cli", "cluster", "up", "--nodes", str(nodes), "--base-port", str(base),
         "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    spawned: list[int] = []
    try:
        if moment == "importing":
            # grpc's extension is mapped part-way through the CLI's imports.
            _wait(lambda: _maps(proc.pid, "cygrpc"), proc, 30, "grpc to load")
        elif moment == "spawned":
            _wait(lambda: bool(_children(proc.pid)), proc, 30, "a node process")
        else:
            assert proc.stdout is not None
            first = proc.stdout.readline()  # blocks until the first line (the cluster is up)
            assert first, "no output"
        spawned = _children(proc.pid)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stderr = err.decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    assert proc.returncode in CLEAN_EXIT, (proc.returncode, stderr, out.decode(errors="replace"))
    for child in spawned:  # no node left behind
        deadline = time.monotonic() + 20
        while Path(f"/proc/{child}").exists() and "zombie" not in _state(child):
            assert time.monotonic() < deadline, f"node process {child} still running"
            time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "zombie"
    return next((line for line in status.splitlines() if line.startswith("State:")), "")
