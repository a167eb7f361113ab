"""Cutting one node *process* off the network, on loopback, without containers.

Every node runs in a cgroup (v2) of its own, entered before the node's Python starts
(``wrap``). To isolate a node, two DROP rules go into an iptables chain of this run:
everything the node's processes send (``-m cgroup --path``: its replies, its own
requests to peers) and everything sent to its listening port. Both directions go, as
with ``docker network disconnect``: established connections hang (no RST), new ones
time out. Healing flushes the chain. Only our chain and our cgroups are touched; both
are removed at the end (``teardown``).

Why not a network namespace per node: the nodes would need addresses other than
127.0.0.1 (veth pairs and a bridge), and the cluster's layout, the CLI and the data
path helpers all speak 127.0.0.1:port. The cgroup-scoped firewall gives the same
failure (a node that can neither send nor receive) with none of that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path


def cgroup2_root() -> Path | None:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, check=check, timeout=20)


class CgroupFirewall:
    def __init__(self, tag: str | None = None) -> None:
        tag = tag or str(os.getpid())
        root = cgroup2_root()
        if root is None:
            raise RuntimeError("no cgroup2 hierarchy is mounted")
        self.root = root
        self.base = root / f"raftlog-chaos-{tag}"
        self.chain = f"RLCHAOS-{tag}"[:28]
        self.isolated: int | None = None
        self._set_up = False

    @staticmethod
    def unavailable_reason() -> str | None:
        """None when isolation can work here; else why not (a probe that cleans up)."""
        if os.geteuid() != 0:
            return "needs root (iptables and cgroups)"
        if shutil.which("iptables") is None:
            return "iptables is not installed"
        try:
            fw = CgroupFirewall(f"probe{os.getpid()}")
            fw.setup()
            try:
                fw._rules("-A", 0, 1)
                fw._rules("-D", 0, 1)
            finally:
                fw.teardown()
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            return f"cgroup-scoped iptables rules do not work here: {exc}"
        return None

    @staticmethod
    def clean_stale() -> None:
        """Remove chains and cgroups left by runs whose process is gone (SIGKILLed
        runners cannot clean up; a stale rule would keep dropping traffic to a port)."""
        listing = _iptables("-S", check=False).stdout.splitlines()
        for line in listing:
            parts = line.split()
            if len(parts) == 2 and parts[0] == "-N" and parts[1].startswith("RLCHAOS-"):
                tag = parts[1][len("RLCHAOS-"):]
                pid = tag.removeprefix("probe")
                if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                    _iptables("-D", "OUTPUT", "-j", parts[1], check=False)
                    _iptables("-F", parts[1], check=False)
                    _iptables("-X", parts[1], check=False)
        root = cgroup2_root()
        for group in root.glob("raftlog-chaos-*") if root is not None else []:
            pid = group.name.rpartition("-")[2].removeprefix("probe")
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                for child in group.glob("node-*"):
                    try:
                        child.rmdir()
                    except OSError:
                        pass
                try:
                    group.rmdir()
                except OSError:
                    pass

    def setup(self) -> None:
        self.clean_stale()
        self.base.mkdir(exist_ok=True)
        _iptables("-N", self.chain)
        _iptables("-I", "OUTPUT", "1", "-j", self.chain)
        self._set_up = True

    def procs_file(self, node_id: int) -> Path:
        group = self.base / f"node-{node_id}"
        group.mkdir(exist_ok=True)
        return group / "cgroup.procs"

    def wrap(self, node_id: int, command: list[str]) -> list[str]:
        """The node's command, run inside its cgroup (same PID: ``exec``)."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs_file(node_id)), *command]

    def _rules(self, op: str, node_id: int, port: int) -> None:
        path = str((self.base / f"node-{node_id}").relative_to(self.root))
        if op == "-A":
            self.procs_file(node_id)
        _iptables(op, self.chain, "-o", "lo", "-m", "cgroup", "--path", path, "-j", "DROP")
        _iptables(op, self.chain, "-o", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP")

    def isolate(self, node_id: int, port: int) -> None:
        if self.isolated is not None:
            raise RuntimeError(f"node {self.isolated} is isolated already")
        self._rules("-A", node_id, port)
        self.isolated = node_id

    def heal(self) -> None:
        _iptables("-F", self.chain)
        self.isolated = None

    def teardown(self) -> None:
        if self._set_up:
            _iptables("-D", "OUTPUT", "-j", self.chain, check=False)
            _iptables("-F", self.chain, check=False)
            _iptables("-X", self.chain, check=False)
            self._set_up = False
        self.isolated = None
        # The cgroups go once their processes are gone (the caller killed them).
        for _ in range(50):
            groups = [g for g in self.base.glob("node-*") if g.is_dir()] if self.base.exists() else []
            try:
                for g in groups:
                    g.rmdir()
                if self.base.exists():
                    self.base.rmdir()
                return
            except OSError:
                time.sleep(0.1)
