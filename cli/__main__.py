"""`python -m cli` is `raftlog` (used to start node processes with this interpreter)."""

from cli.main import main

main()
