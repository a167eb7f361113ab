"""`python -m raftlog.cli` is `raftlog` (used to start node processes with this interpreter)."""

from raftlog.cli.main import main

main()
