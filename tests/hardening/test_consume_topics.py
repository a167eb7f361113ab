"""`raftlog consume` on a topic or partition that does not exist exits with
UNKNOWN_TOPIC_OR_PARTITION instead of waiting forever (hardening finding 3).
Against an in-process broker (tests/broker/harness.py), the CLI as a subprocess.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from raftlog.node.broker.replica_manager import LogFactory
from tests.broker.harness import Cluster, poll, run


async def raftlog_cli(*args: str, timeout_s: float = 30.0) -> tuple[int | None, str, str]:
    """Run ``python -m raftlog.cli ARGS``; (exit code, stdout, stderr). Exit code None
    when it had not finished within ``timeout_s`` (then it is killed)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "raftlog.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        return None, out.decode(), err.decode()
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("where", [["nope"], ["t", "--partition", "7"], ["nope", "--partition", "0"]],
                         ids=["topic", "partition", "topic+partition"])
def test_consume_unknown_topic_or_partition_exits(tmp_path: Path, log_factory: LogFactory | None,
                                                  where: list[str]) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, size=1, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            started = time.monotonic()
            code, out, err = await raftlog_cli("consume", *where, "--bootstrap-server", f"127.0.0.1:{c[1].port}",
                                               timeout_s=20)
            assert code is not None, f"still running after 20 s (stderr: {err!r})"
            assert code != 0 and "UNKNOWN_TOPIC_OR_PARTITION" in err, (code, out, err)
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
            assert time.monotonic() - started < 15

    run(scenario(), 60)
