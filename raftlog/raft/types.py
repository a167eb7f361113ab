"""Values that flow in and out of the pure Raft core.

Everything here is a frozen, slotted dataclass: messages and entries are shared
between the core, the driver and (in tests) the simulator, so nobody may mutate
one after it was handed over. Conversion to protobuf happens only at the gRPC edge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

#: Node ids are positive; 0 means "nobody" (no vote cast, no leader known).
NONE = 0


class EntryKind(enum.IntEnum):
    NORMAL = 0  # opaque application data (a metadata record batch, or empty: leader no-op)


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    data: bytes = b""
    kind: EntryKind = EntryKind.NORMAL

    def size(self) -> int:
        """Bytes this entry counts for in message and in-flight size limits."""
        return len(self.data) + 16


@dataclass(frozen=True, slots=True)
class HardState:
    """The state that must be durable before any message depending on it leaves."""

    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int = 0
    term: int = 0
    voters: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    meta: SnapshotMeta = field(default_factory=SnapshotMeta)
    data: bytes = b""

    def is_empty(self) -> bool:
        return self.meta.index == 0


class MessageType(enum.IntEnum):
    APPEND = 1  # AppendEntries (also carries heartbeats' job of advancing commit)
    APPEND_RESPONSE = 2
    VOTE = 3
    VOTE_RESPONSE = 4
    PRE_VOTE = 5
    PRE_VOTE_RESPONSE = 6
    HEARTBEAT = 7
    HEARTBEAT_RESPONSE = 8
    SNAPSHOT = 9  # InstallSnapshot
    TIMEOUT_NOW = 10  # leadership transfer: "campaign now, skipping pre-vote"
    READ_INDEX = 11  # a follower forwards a ReadIndex request to the leader
    READ_INDEX_RESPONSE = 12


@dataclass(frozen=True, slots=True)
class Message:
    """One Raft message. Field meaning depends on ``type`` (as in etcd's raftpb).

    - ``index``/``log_term``: APPEND: the entry preceding ``entries``; VOTE/PRE_VOTE:
      the candidate's last log entry; APPEND_RESPONSE: the highest index known to
      match (or, with ``reject``, the rejected index) and ``log_term`` the follower's
      term at ``reject_hint`` for fast back-off.
    - ``commit``: the sender's commit index (APPEND, HEARTBEAT).
    - ``context``: opaque bytes: ReadIndex request ids, campaign-transfer marker.
    """

    type: MessageType
    to: int
    sender: int
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    snapshot: Snapshot | None = None
    context: bytes = b""


class Role(enum.Enum):
    FOLLOWER = "Follower"
    PRE_CANDIDATE = "PreCandidate"
    CANDIDATE = "Candidate"
    LEADER = "Leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth telling the driver about (not persisted)."""

    leader_id: int = NONE
    role: Role = Role.FOLLOWER


@dataclass(frozen=True, slots=True)
class ReadState:
    """A ReadIndex answer: reads tagged ``context`` may be served once the state
    machine has applied ``index``."""

    index: int
    context: bytes


@dataclass(frozen=True, slots=True)
class Ready:
    """What the driver must do, in this order, then acknowledge with ``advance(ready)``.

    Persist (one synced write): ``hard_state``, ``snapshot``, ``entries``.
    Only *after* that write returned may ``messages`` be sent: a vote or an
    append acknowledgement must never reach a peer before the state it promises
    is on disk. ``committed_entries`` may be applied after the write too.
    """

    soft_state: SoftState | None = None
    """Changed leader or role; informational, act on it at any time."""

    hard_state: HardState | None = None
    """New term/vote/commit to persist, or None when unchanged. Persist before sending."""

    snapshot: Snapshot | None = None
    """A snapshot received from the leader: persist it (it replaces the log up to
    its index) and load it into the state machine, before sending ``messages``."""

    entries: tuple[Entry, ...] = ()
    """Entries to append to the log store (truncating any conflicting suffix there).
    Persist before sending ``messages``."""

    committed_entries: tuple[Entry, ...] = ()
    """Entries known committed, in order: apply them to the state machine once
    the persist step of this Ready is done."""

    messages: tuple[Message, ...] = ()
    """Messages to send, strictly after the persist step."""

    read_states: tuple[ReadState, ...] = ()
    """ReadIndex results: serve each once the applied index reaches its ``index``."""

    def must_sync(self) -> bool:
        """Whether the persist step must be fsync'ed (anything durable changed)."""
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None

    def is_empty(self) -> bool:
        return not (
            self.soft_state
            or self.hard_state
            or self.snapshot
            or self.entries
            or self.committed_entries
            or self.messages
            or self.read_states
        )


@dataclass(frozen=True, slots=True)
class PeerProgress:
    """The leader's view of one voter's replication (for status and describe)."""

    match: int
    next: int
    recent_active: bool
    state: str  # "probe", "replicate" or "snapshot"


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    term: int
    vote: int
    commit: int
    applied: int
    last_index: int
    leader_id: int
    role: Role
    progress: tuple[tuple[int, PeerProgress], ...] = ()
    """Leader only: (node id, progress) for each voter including itself."""

    lead_transferee: int = NONE
