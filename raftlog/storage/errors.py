"""Typed errors of the node's on-disk store.

A node must never "repair" or wipe its data dir on its own: Raft's safety rests
on what was acknowledged as durable (votes, log entries), so every problem with
the dir surfaces as one of these errors and an operator decides.
"""

from __future__ import annotations


class NodeDBError(Exception):
    """Base class for errors of the node database."""


class DataDirError(NodeDBError):
    """The data dir cannot be used as it is."""


class DataDirLockedError(DataDirError):
    """Another live process (or another NodeDB in this process) holds the dir's lock."""


class DataDirCorruptError(DataDirError):
    """The dir's RocksDB files or the records stored in it are not readable."""


class DataDirIOError(DataDirError):
    """An I/O failure: path is not a directory, permission denied, disk full, ..."""


class DataDirFormatError(DataDirError):
    """The dir holds a database that is not (or not this version of) a raftlog node DB."""


class NodeDBClosedError(NodeDBError):
    """The NodeDB (or a store built on it) was already closed."""


class PartitionLogError(Exception):
    """Base class for what a partition log refuses. Storage speaks of logs, offsets
    and bytes; the broker translates these to Kafka error codes at its boundary."""


class PartitionDeletedError(PartitionLogError):
    """The partition's log was deleted (its topic is gone)."""


class LogOffsetOutOfRangeError(PartitionLogError):
    """An offset outside what the log holds (or can start at)."""


class AppendOffsetError(PartitionLogError):
    """An append that does not start at the log's next offset (or is not contiguous
    within itself): a broker bug, never client input."""


class BatchMismatchError(PartitionLogError):
    """A batch whose header does not match its bytes."""
