"""A pure Raft state machine in the shape of etcd's raft: no I/O, no threads, no clock.

Time enters through ``tick()``, messages through ``step()``, and the core hands the
driver a ``Ready`` to carry out and acknowledge with ``advance()``.
"""

from raftlog.raft.node import (
    CAMPAIGN_TRANSFER,
    Config,
    InvalidMessageError,
    NotLeaderError,
    ProposalDroppedError,
    RaftNode,
)
from raftlog.raft.roles import LEGAL_TRANSITIONS, IllegalTransitionError
from raftlog.raft.types import (
    NONE,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    PeerProgress,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
    Status,
)

__all__ = [
    "CAMPAIGN_TRANSFER",
    "LEGAL_TRANSITIONS",
    "NONE",
    "Config",
    "Entry",
    "EntryKind",
    "HardState",
    "IllegalTransitionError",
    "InvalidMessageError",
    "Message",
    "MessageType",
    "NotLeaderError",
    "PeerProgress",
    "ProposalDroppedError",
    "RaftNode",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "SoftState",
    "Status",
]
