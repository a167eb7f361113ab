"""Raft values <-> protobuf: lossless round trips, and validation of what arrives."""

from __future__ import annotations

import pytest

from raftlog.node.quorum.codec import CodecError, message_from_pb, message_to_pb, messages_from_pb
from raftlog.raft.types import Entry, Message, MessageType, Snapshot, SnapshotMeta
from raftlog.v1 import raft_pb2


def test_round_trip_every_field() -> None:
    msgs = [
        Message(type=MessageType.APPEND, to=2, sender=1, term=5, log_term=4, index=10,
                entries=(Entry(4, 11, b"a"), Entry(5, 12, b"")), commit=9),
        Message(type=MessageType.APPEND_RESPONSE, to=1, sender=2, term=5, index=12, reject=True,
                reject_hint=8, log_term=3),
        Message(type=MessageType.SNAPSHOT, to=3, sender=1, term=5,
                snapshot=Snapshot(SnapshotMeta(index=100, term=4, voters=(1, 2, 3)), b"img")),
        Message(type=MessageType.READ_INDEX, to=1, sender=3, context=b"ctx"),
        Message(type=MessageType.HEARTBEAT, to=2, sender=1, term=7, commit=3, context=b"r"),
    ]
    for msg in msgs:
        wire = message_to_pb(msg).SerializeToString()
        back = message_from_pb(raft_pb2.RaftMessage.FromString(wire))
        assert back == msg


def _pb(**kw: object) -> raft_pb2.RaftMessage:
    base: dict[str, object] = {"type": raft_pb2.APPEND, "to": 2, "sender": 1, "term": 3}
    base.update(kw)
    return raft_pb2.RaftMessage(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pb", "fragment"),
    [
        (_pb(type=0), "unknown Raft message type 0"),
        (_pb(type=42), "unknown Raft message type 42"),
        (_pb(to=0), "bad recipient"),
        (_pb(to=-3), "bad recipient"),
        (_pb(sender=-1), "bad sender"),
        (_pb(entries=[raft_pb2.Entry(term=3, index=1), raft_pb2.Entry(term=3, index=3)]), "not contiguous"),
        (_pb(index=5, entries=[raft_pb2.Entry(term=3, index=5)]), "expected index 6"),
        (_pb(entries=[raft_pb2.Entry(term=3, index=1), raft_pb2.Entry(term=2, index=2)]), "goes back"),
        (_pb(entries=[raft_pb2.Entry(term=4, index=1)]), "newer than its message"),
        (_pb(entries=[raft_pb2.Entry(term=0, index=1)]), "term 0"),
        (_pb(entries=[raft_pb2.Entry(term=3, index=1, kind=7)]), "unknown entry kind"),  # type: ignore[arg-type]
        (_pb(type=raft_pb2.HEARTBEAT, entries=[raft_pb2.Entry(term=3, index=1)]), "must not carry entries"),
        (_pb(type=raft_pb2.SNAPSHOT), "without a snapshot"),
        (_pb(type=raft_pb2.SNAPSHOT, snapshot=raft_pb2.Snapshot(meta=raft_pb2.SnapshotMeta(index=0, term=1))),
         "index or term 0"),
        (_pb(type=raft_pb2.SNAPSHOT,
             snapshot=raft_pb2.Snapshot(meta=raft_pb2.SnapshotMeta(index=5, term=9, voters=[1]))),
         "newer than its message"),
        (_pb(type=raft_pb2.SNAPSHOT,
             snapshot=raft_pb2.Snapshot(meta=raft_pb2.SnapshotMeta(index=5, term=1, voters=[1, -2]))),
         "not positive"),
        (_pb(snapshot=raft_pb2.Snapshot(meta=raft_pb2.SnapshotMeta(index=5, term=1))), "must not carry a snapshot"),
    ],
)
def test_invalid_messages(pb: raft_pb2.RaftMessage, fragment: str) -> None:
    with pytest.raises(CodecError, match=fragment):
        message_from_pb(pb)


def test_batch_names_the_bad_message() -> None:
    with pytest.raises(CodecError, match="message 1: "):
        messages_from_pb([_pb(), _pb(type=77)])
