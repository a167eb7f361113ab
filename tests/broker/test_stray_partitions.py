"""A topic deleted while a broker was down: at start (its first metadata image) the
broker removes the partitions whose topic id the image does not have, as KRaft
brokers remove stray logs."""

from __future__ import annotations

from pathlib import Path

from raftlog.storage.node_db import NodeDB
from raftlog.storage.partition_log import topic_id_bytes
from tests.broker.harness import Cluster, batch, poll, run


def has_data(db: NodeDB, topic_id: str) -> bool:
    prefix = topic_id_bytes(topic_id)
    end = prefix[:-1] + bytes([prefix[-1] + 1]) if prefix[-1] < 255 else prefix + b"\xff" * 8
    return (db.partition_batches.first_key(prefix, end) is not None
            or db.partition_state.first_key(prefix, end) is not None)


def test_restarted_broker_removes_partitions_of_topics_deleted_while_it_was_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path) as c:
            gone = c.controller.create_topic("gone", [[1, 2, 3], [2, 3, 1]])
            kept = c.controller.create_topic("kept", [[1, 2, 3]])
            await poll(lambda: c[1].partition("gone").is_leader and c[1].partition("kept").is_leader,
                       what="leaders")
            await c.produce(1, "gone", batch([b"a"]), acks=-1)
            await c.produce(1, "kept", batch([b"b"]), acks=-1)
            await poll(lambda: c[3].partition("gone").log_end_offset == 1, what="replicated")
            await c.stop_broker(3)
            c.controller.fence(3)
            c.controller.delete_topic("gone")
            db = NodeDB.open(tmp_path / "broker-3")
            assert has_data(db, gone) and has_data(db, kept)
            db.close()
            broker = await c.restart_broker(3)
            c.controller.unfence(3)
            await poll(lambda: not has_data(broker.db, gone), timeout_s=5, what="stray partitions removed")
            assert has_data(broker.db, kept)
            await poll(lambda: broker.partition("kept").log_end_offset == 1, what="kept partition intact")

    run(scenario())
