"""Raft values <-> raftlog.v1 protobuf, at the gRPC edge only.

Decoding validates what the wire types cannot: known enum values, positive node
ids, entries that are contiguous and carry terms no newer than their message,
and a snapshot exactly on SNAPSHOT messages. A violation raises ``CodecError``,
which servicers answer with INVALID_REQUEST before anything reaches the core.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from raftlog.raft.types import Entry, EntryKind, Message, MessageType, Snapshot, SnapshotMeta
from raftlog.v1 import raft_pb2

_MAX_NODE_ID = 2**31 - 1
#: Largest term, index or commit a message may carry. A peer that could set a term
#: near 2**64 would leave the quorum unable to encode the next one (term + 1) — for
#: good, since terms are durable. 2**62 leaves room to count up for ever in practice.
MAX_RAFT_VALUE = 2**62


class CodecError(ValueError):
    """A protobuf Raft message that no correct peer would send."""


# ------------------------------------------------------------------------ encode


def entry_to_pb(entry: Entry) -> raft_pb2.Entry:
    return raft_pb2.Entry(term=entry.term, index=entry.index, data=entry.data, kind=int(entry.kind))  # type: ignore[arg-type]


def snapshot_to_pb(snapshot: Snapshot) -> raft_pb2.Snapshot:
    meta = snapshot.meta
    return raft_pb2.Snapshot(
        meta=raft_pb2.SnapshotMeta(index=meta.index, term=meta.term, voters=list(meta.voters)),
        data=snapshot.data,
    )


def message_to_pb(msg: Message) -> raft_pb2.RaftMessage:
    pb = raft_pb2.RaftMessage(
        type=int(msg.type),  # type: ignore[arg-type]
        to=msg.to,
        sender=msg.sender,
        term=msg.term,
        log_term=msg.log_term,
        index=msg.index,
        entries=[entry_to_pb(e) for e in msg.entries],
        commit=msg.commit,
        reject=msg.reject,
        reject_hint=msg.reject_hint,
        context=msg.context,
    )
    if msg.snapshot is not None:
        pb.snapshot.CopyFrom(snapshot_to_pb(msg.snapshot))
    return pb


def step_request(cluster_id: str, sender: int, messages: Iterable[Message]) -> raft_pb2.StepRequest:
    return raft_pb2.StepRequest(
        cluster_id=cluster_id, sender=sender, messages=[message_to_pb(m) for m in messages]
    )


# ------------------------------------------------------------------------ decode


def _check_bounded(what: str, **values: int) -> None:
    for name, value in values.items():
        if not 0 <= value <= MAX_RAFT_VALUE:
            raise CodecError(f"{what}: {name} {value} is outside [0, 2**62]")


def entry_from_pb(pb: raft_pb2.Entry) -> Entry:
    try:
        kind = EntryKind(pb.kind)
    except ValueError:
        raise CodecError(f"entry {pb.index}: unknown entry kind {pb.kind}") from None
    if pb.index == 0:
        raise CodecError("entry index 0 is reserved")
    if pb.term == 0:
        raise CodecError(f"entry {pb.index}: term 0 is reserved")
    _check_bounded(f"entry {pb.index}", term=pb.term, index=pb.index)
    return Entry(term=pb.term, index=pb.index, data=bytes(pb.data), kind=kind)


def snapshot_from_pb(pb: raft_pb2.Snapshot) -> Snapshot:
    meta = pb.meta
    if meta.index == 0 or meta.term == 0:
        raise CodecError("snapshot with index or term 0")
    _check_bounded("snapshot", index=meta.index, term=meta.term)
    voters = tuple(meta.voters)
    if any(not 0 < v <= _MAX_NODE_ID for v in voters):
        raise CodecError(f"snapshot voters {list(voters)} are not positive node ids")
    if len(set(voters)) != len(voters):
        raise CodecError(f"snapshot voters {list(voters)} repeat a node id")
    return Snapshot(SnapshotMeta(index=meta.index, term=meta.term, voters=voters), bytes(pb.data))


def message_from_pb(pb: raft_pb2.RaftMessage) -> Message:
    try:
        mtype = MessageType(pb.type)
    except ValueError:
        raise CodecError(f"unknown Raft message type {pb.type}") from None
    if not 0 < pb.to <= _MAX_NODE_ID:
        raise CodecError(f"{mtype.name}: bad recipient id {pb.to}")
    if not 0 < pb.sender <= _MAX_NODE_ID:
        raise CodecError(f"{mtype.name}: bad sender id {pb.sender}")
    _check_bounded(mtype.name, term=pb.term, log_term=pb.log_term, index=pb.index, commit=pb.commit,
                   reject_hint=pb.reject_hint)
    entries = tuple(entry_from_pb(e) for e in pb.entries)
    if entries:
        if mtype != MessageType.APPEND:
            raise CodecError(f"{mtype.name} must not carry entries")
        _check_contiguous(entries, pb.index, pb.log_term, pb.term)
    snapshot: Snapshot | None = None
    if mtype == MessageType.SNAPSHOT:
        if not pb.HasField("snapshot"):
            raise CodecError("SNAPSHOT message without a snapshot")
        snapshot = snapshot_from_pb(pb.snapshot)
        if snapshot.meta.term > pb.term:
            raise CodecError(
                f"snapshot term {snapshot.meta.term} is newer than its message's term {pb.term}"
            )
    elif pb.HasField("snapshot"):
        raise CodecError(f"{mtype.name} must not carry a snapshot")
    return Message(
        type=mtype,
        to=pb.to,
        sender=pb.sender,
        term=pb.term,
        log_term=pb.log_term,
        index=pb.index,
        entries=entries,
        commit=pb.commit,
        reject=pb.reject,
        reject_hint=pb.reject_hint,
        snapshot=snapshot,
        context=bytes(pb.context),
    )


def messages_from_pb(pbs: Sequence[raft_pb2.RaftMessage]) -> list[Message]:
    """Decode a whole batch; the first bad message fails the batch (nothing is stepped)."""
    out: list[Message] = []
    for i, pb in enumerate(pbs):
        try:
            out.append(message_from_pb(pb))
        except CodecError as exc:
            raise CodecError(f"message {i}: {exc}") from None
    return out


def _check_contiguous(entries: tuple[Entry, ...], prev_index: int, prev_term: int, term: int) -> None:
    expected = prev_index + 1
    last_term = prev_term
    for entry in entries:
        if entry.index != expected:
            raise CodecError(
                f"entries are not contiguous: expected index {expected}, got {entry.index}"
            )
        if entry.term < last_term:
            raise CodecError(
                f"entry {entry.index}: term {entry.term} goes back from {last_term}"
            )
        if entry.term > term:
            raise CodecError(
                f"entry {entry.index}: term {entry.term} is newer than its message's term {term}"
            )
        last_term = entry.term
        expected += 1
