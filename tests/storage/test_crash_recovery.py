"""kill -9 a real writer process mid-stream, reopen its data dir, check what survived.

The writer (tests/storage/crash_writer.py) follows a plan that is a pure function
of its seed, so the parent recomputes the state after every write: the reopened
store must show exactly the state after the last acknowledged write, or after
the one write that may have been in flight when the SIGKILL landed.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raftlog.storage import DataDirLockedError, NodeDB, RocksRaftStorage
from tests.storage.crash_writer import State, observe, plan

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0


class LineReader:
    """Lines of a child's stdout, read with a deadline (never a bare sleep)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._fd, selectors.EVENT_READ)
        self._buf = b""
        self.eof = False

    def read_line(self, deadline: float) -> str | None:
        """The next complete line, or None at EOF; raises TimeoutError at the deadline."""
        while b"\n" not in self._buf:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("child wrote no line before the deadline")
            if self._sel.select(timeout=left):
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    self.eof = True  # a torn last line (no newline) is no ack
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode()

    def close(self) -> None:
        self._sel.close()


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _check_invariants(got: State) -> None:
    """Contiguous log with non-decreasing terms, bounds consistent."""
    assert [e.index for e in got.entries] == list(range(got.first_index, got.last_index + 1))
    terms = [got.offset_term] + [e.term for e in got.entries]
    assert terms == sorted(terms)
    assert got.first_index - 1 <= got.snapshot.meta.index or got.first_index == 1


@pytest.mark.parametrize(
    ("seed", "sync"),
    [(1, True), (2, True), (3, True), (4, True), (5, False)],
)
def test_kill9_mid_writes_keeps_every_ack(tmp_path: Path, seed: int, sync: bool) -> None:
    rng = random.Random(seed * 7919)
    kill_after = rng.randint(30, 1500)
    data_dir = tmp_path / "data"
    proc = _spawn(
        "tests.storage.crash_writer", str(data_dir), str(seed), "20000", "20", "1" if sync else "0"
    )
    reader = LineReader(proc)
    acks: list[tuple[int, ...]] = []
    finished = False
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(acks) < kill_after:
            line = reader.read_line(deadline)
            if line is None or line == "done":
                finished = True
                break
            acks.append(tuple(int(x) for x in line.split()[1:]))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=DEADLINE_S)
        # Acks already in the pipe were acknowledged too: drain them.
        drain_deadline = time.monotonic() + DEADLINE_S
        while (line := reader.read_line(drain_deadline)) is not None:
            if line == "done":
                finished = True
            else:
                acks.append(tuple(int(x) for x in line.split()[1:]))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=DEADLINE_S)
        reader.close()
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert acks, f"writer acknowledged nothing; stderr:\n{stderr}"

    # The states after write n (n = 1, 2, ...), recomputed from the seed.
    n_acked = len(acks)
    expected: list[State] = []
    for n, (_, state) in enumerate(plan(seed), start=1):
        expected.append(state)
        if n == n_acked + 1:
            break
    acked, in_flight = expected[n_acked - 1], expected[n_acked]
    hs = acked.hard_state
    assert acks[-1] == (acked.last_index, hs.term, hs.vote, hs.commit)  # the replay matches

    store = RocksRaftStorage.open(data_dir)
    try:
        got = observe(store)
    finally:
        store.close()
    _check_invariants(got)
    allowed = [acked] if finished else [acked, in_flight]
    assert got.hard_state in [s.hard_state for s in allowed]
    # Every acknowledged entry not compacted is on disk with the same term and data,
    # unless the write in flight at the kill truncated or replaced it.
    on_disk = {e.index: e for e in got.entries}
    next_entries = {e.index: e for e in in_flight.entries}
    for entry in acked.entries:
        if entry.index < got.first_index or on_disk.get(entry.index) == entry:
            continue
        assert not finished and got == in_flight, f"acknowledged {entry} lost"
        assert next_entries.get(entry.index) != entry
    assert got in allowed, f"state after {n_acked} acks is neither the acked nor the next one"


def test_open_while_another_process_holds_the_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # The parent holds the dir; a second open in a child process is refused.
    with NodeDB.open(data_dir):
        code = (
            "import sys\n"
            "from raftlog.storage import NodeDB, DataDirLockedError\n"
            "try:\n"
            f"    NodeDB.open({str(data_dir)!r})\n"
            "except DataDirLockedError as e:\n"
            "    print('locked', e)\n"
            "else:\n"
            "    print('opened')\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            cwd=REPO,
        )
        assert out.stdout.startswith("locked"), out.stdout + out.stderr

    # A child holds the dir; an open here is refused until the child is gone.
    holder = (
        "import sys\n"
        "from raftlog.storage import NodeDB\n"
        f"db = NodeDB.open({str(data_dir)!r})\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"  # hold until the parent closes our stdin
        "db.close()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    reader = LineReader(proc)
    try:
        assert reader.read_line(time.monotonic() + DEADLINE_S) == "ready"
        with pytest.raises(DataDirLockedError):
            NodeDB.open(data_dir)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=DEADLINE_S)
        reader.close()
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 0
    NodeDB.open(data_dir).close()  # released on exit
