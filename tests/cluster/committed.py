"""Read a stopped node's committed Raft log and rebuild its MetadataImage from disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from raftlog.node.metadata.image import MetadataImage
from raftlog.node.metadata.loader import MetadataLoader
from raftlog.raft.types import Entry
from raftlog.storage.raft_store import RocksRaftStorage


@dataclass(frozen=True)
class CommittedState:
    entries: dict[int, Entry]
    """Committed entries still in the log (older ones live in the snapshot)."""
    image: MetadataImage
    """Snapshot plus committed entries, replayed through the node's own loader."""
    commit: int


def committed_state(data_dir: Path, upto: int | None = None) -> CommittedState:
    """The node's committed state, or its state at offset ``upto`` (which must not be
    below its snapshot: nodes stop at different commit points, so comparisons pick
    a common one)."""
    storage = RocksRaftStorage.open(data_dir)
    try:
        commit = storage.hard_state().commit if upto is None else upto
        loader = MetadataLoader(node_id=0)
        snapshot = storage.snapshot()
        if snapshot.meta.index > commit:
            raise ValueError(f"snapshot at {snapshot.meta.index} is past offset {commit}")
        if not snapshot.is_empty():
            loader.load_snapshot(snapshot.data)
        lo = storage.first_index()
        entries = storage.entries(lo, commit + 1, 1 << 62) if commit >= lo else []
        loader.apply_entries(entries)
        return CommittedState({e.index: e for e in entries}, loader.image, commit)
    finally:
        storage.close()
