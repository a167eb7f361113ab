"""Malformed Step batches are refused with the right Kafka error and change nothing."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from raftlog.node.quorum.codec import message_to_pb
from raftlog.errors import ErrorCode
from raftlog.raft.types import Entry, Message, MessageType, Snapshot, SnapshotMeta
from raftlog.status import from_rpc_error
from raftlog.v1 import raft_pb2, raft_pb2_grpc
from tests.node.conftest import InProcessCluster, run

BIG_TERM = 100


def _append(sender: int, to: int, entries: tuple[Entry, ...], index: int = 0) -> raft_pb2.RaftMessage:
    return message_to_pb(
        Message(type=MessageType.APPEND, to=to, sender=sender, term=BIG_TERM, index=index,
                entries=entries)
    )


def _cases(cluster_id: str) -> list[tuple[str, raft_pb2.StepRequest, ErrorCode]]:
    good = _append(2, 1, (Entry(BIG_TERM, 1, b""),))
    non_contiguous = _append(2, 1, (Entry(BIG_TERM, 1, b""), Entry(BIG_TERM, 3, b"")))
    unknown_type = raft_pb2.RaftMessage()
    unknown_type.CopyFrom(good)
    unknown_type.type = 99  # type: ignore[assignment]
    negative_to = raft_pb2.RaftMessage()
    negative_to.CopyFrom(good)
    negative_to.to = -1
    # Passes the wire checks, refused by the core (READ_INDEX must carry term 0).
    bad_for_core = message_to_pb(
        Message(type=MessageType.READ_INDEX, to=1, sender=2, term=BIG_TERM, context=b"x")
    )
    # A term of 2**64-1 once bricked the quorum for good (term + 1 does not encode).
    huge_term = raft_pb2.RaftMessage()
    huge_term.CopyFrom(good)
    huge_term.term = 2**64 - 1
    huge_term.entries[0].term = 2**64 - 1
    huge_commit = message_to_pb(Message(type=MessageType.HEARTBEAT, to=1, sender=2, term=BIG_TERM, commit=2**63))
    # A snapshot that does not decode was persisted and crash-looped the node.
    bad_snapshot = message_to_pb(Message(
        type=MessageType.SNAPSHOT, to=1, sender=2, term=BIG_TERM,
        snapshot=Snapshot(SnapshotMeta(index=5, term=BIG_TERM, voters=(1, 2, 3)), b"\xff\xfe not a snapshot"),
    ))
    return [
        ("term near 2**64",
         raft_pb2.StepRequest(cluster_id=cluster_id, sender=2, messages=[huge_term]),
         ErrorCode.INVALID_REQUEST),
        ("commit near 2**63",
         raft_pb2.StepRequest(cluster_id=cluster_id, sender=2, messages=[huge_commit]),
         ErrorCode.INVALID_REQUEST),
        ("undecodable snapshot",
         raft_pb2.StepRequest(cluster_id=cluster_id, sender=2, messages=[bad_snapshot]),
         ErrorCode.INVALID_REQUEST),
        ("bad cluster id", raft_pb2.StepRequest(cluster_id="other", sender=2, messages=[good]),
         ErrorCode.INCONSISTENT_CLUSTER_ID),
        ("unknown sender", raft_pb2.StepRequest(cluster_id=cluster_id, sender=7, messages=[good]),
         ErrorCode.INCONSISTENT_VOTER_SET),
        ("self as sender", raft_pb2.StepRequest(cluster_id=cluster_id, sender=1, messages=[good]),
         ErrorCode.INCONSISTENT_VOTER_SET),
        ("non-contiguous entries",
         raft_pb2.StepRequest(cluster_id=cluster_id, sender=2, messages=[good, non_contiguous]),
         ErrorCode.INVALID_REQUEST),
        ("unknown message type",
         raft_pb2.StepRequest(cluster_id=cluster_id, sender=2, messages=[unknown_type]),
         ErrorCode.INVALID_REQUEST),
        ("negative recipient",
         raft_pb2.StepRequest(cluster_id=cluster_id, sender=2, messages=[negative_to]),
         ErrorCode.INVALID_REQUEST),
        ("sender mismatch", raft_pb2.StepRequest(cluster_id=cluster_id, sender=3, messages=[good]),
         ErrorCode.INVALID_REQUEST),
        ("refused by the core",
         raft_pb2.StepRequest(cluster_id=cluster_id, sender=2, messages=[bad_for_core]),
         ErrorCode.INVALID_REQUEST),
    ]


def test_malformed_step_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        # Only node 1 of three runs: it cannot elect anyone, so its term stays put
        # unless a bad message gets through (each one carries term 100).
        cluster = InProcessCluster(tmp_path)
        await cluster.start(1)
        node = cluster.nodes[1]
        try:
            before = await node.driver.status()
            async with grpc.aio.insecure_channel(cluster.address(1)) as channel:
                stub = raft_pb2_grpc.QuorumStub(channel)
                for name, request, code in _cases(node.config.cluster_id):
                    with pytest.raises(grpc.aio.AioRpcError) as info:
                        await stub.Step(request, timeout=5)
                    assert from_rpc_error(info.value).code == code, name
                    after = await node.driver.status()
                    assert (after.term, after.vote, after.commit, after.last_index, after.leader_id) == (
                        before.term, before.vote, before.commit, before.last_index, before.leader_id
                    ), name
                # The same message without the defect is accepted and moves the term:
                # the refusals above were what kept the state unchanged.
                good = _append(2, 1, (Entry(BIG_TERM, 1, b""),))
                await stub.Step(
                    raft_pb2.StepRequest(cluster_id=node.config.cluster_id, sender=2, messages=[good]),
                    timeout=5,
                )
                assert (await node.driver.status()).term == BIG_TERM
        finally:
            await cluster.stop()

    run(scenario())


def test_a_snapshot_that_does_not_decode_is_a_value_error_not_a_crash() -> None:
    """Restoring one at start becomes the node's one-line StartupError (ValueError is
    what node.app turns into it), never a DecodeError traceback on every start."""
    from raftlog.node.metadata.loader import MetadataLoader

    loader = MetadataLoader(1)
    with pytest.raises(ValueError, match="does not decode"):
        loader.check_snapshot(b"\xff\xfe not a snapshot")
    with pytest.raises(ValueError, match="does not decode"):
        loader.restore(b"\xff\xfe not a snapshot")
    loader.check_snapshot(loader.snapshot())  # its own snapshots do
