"""rocksdict-backed stores of a node: the node DB and the Raft storage on it."""

from raftlog.storage.errors import (
    DataDirCorruptError,
    DataDirError,
    DataDirFormatError,
    DataDirIOError,
    DataDirLockedError,
    NodeDBClosedError,
    NodeDBError,
)
from raftlog.storage.node_db import CF, ColumnFamilyView, NodeDB, WriteBatch
from raftlog.storage.raft_store import RocksRaftStorage

__all__ = [
    "CF",
    "ColumnFamilyView",
    "DataDirCorruptError",
    "DataDirError",
    "DataDirFormatError",
    "DataDirIOError",
    "DataDirLockedError",
    "NodeDB",
    "NodeDBClosedError",
    "NodeDBError",
    "RocksRaftStorage",
    "WriteBatch",
]
