"""Three in-process brokers replicating over real gRPC (docs/architecture.md §4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from raftlog.node.broker.replica_manager import LogFactory
from raftlog.errors import ErrorCode, KafkaError
from raftlog.records import read_records, split_batches
from tests.broker.harness import Cluster, batch, poll, run


def values_from(records: bytes) -> list[tuple[int, bytes | None]]:
    out: list[tuple[int, bytes | None]] = []
    for _, view in split_batches(records):
        out.extend((r.offset, r.value) for r in read_records(view))
    return out


def test_produce_fetch_round_trip_all_acks(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            r = await c.produce(1, "t", batch([b"a", b"b", b"c"]), acks=-1)
            assert (r.base_offset, list(r.batch_base_offsets)) == (0, [0])
            assert c[1].partition("t").high_watermark == 3
            r = await c.produce(1, "t", batch([b"d"]), acks=1)
            assert r.base_offset == 3
            r = await c.produce(1, "t", batch([b"e", b"f"]), acks=0)
            assert r.base_offset == -1
            r = await c.produce(1, "t", batch([b"g"]) + batch([b"h", b"i"]), acks=-1)
            assert (r.base_offset, list(r.batch_base_offsets)) == (6, [6, 7])
            f = await c.fetch(1, "t", 0, max_wait_ms=1000)
            assert f.high_watermark == 9
            assert values_from(f.records) == list(enumerate([b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h", b"i"]))
            # The followers hold the same bytes below the HW.
            await poll(lambda: all(c[b].partition("t").log_end_offset == 9 for b in (2, 3)), what="replicated")
            assert c.log_bytes(1, "t", 9) == c.log_bytes(2, "t", 9) == c.log_bytes(3, "t", 9)
            # Fetch from a follower: NOT_LEADER_OR_FOLLOWER naming the leader.
            with pytest.raises(KafkaError) as err:
                await c.fetch(2, "t", 0)
            assert err.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
            assert err.value.info.leader_id == 1
            assert err.value.info.leader_address == f"127.0.0.1:{c[1].port}"

    run(scenario())


def test_lagging_follower_leaves_isr_and_returns(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            await c.produce(1, "t", batch([b"x"]), acks=-1)
            leader = c[1].partition("t")
            c[3].rm.pause_fetchers()
            hws: list[int] = []
            for i in range(5):
                await c.produce(1, "t", batch([b"%d" % i]), acks=1)
                hws.append(leader.high_watermark)
                # HW = min LEO over the ISR: follower 3 is still in it and stopped at 1.
                isr_leos = [c[b].partition("t").log_end_offset for b in leader.maximal_isr]
                assert leader.high_watermark <= min(isr_leos)
            assert hws == sorted(hws)
            assert c.isr_of("t") == (1, 2, 3)
            # After replica.lag.time.max.ms the leader asks the controller to drop 3.
            await poll(lambda: c.isr_of("t") == (1, 2), timeout_s=5, what="ISR shrink")
            assert any(list(item.new_isr) == [1, 2] for req in c.controller.alter_calls for item in req.partitions)
            await poll(lambda: leader.isr == (1, 2) and leader.high_watermark == 6, what="HW after shrink")
            r = await c.produce(1, "t", batch([b"y"]), acks=-1)
            assert r.base_offset == 6
            # It catches up and is added back, again through AlterPartition.
            c[3].rm.resume_fetchers()
            await poll(lambda: c.isr_of("t") == (1, 2, 3), timeout_s=5, what="ISR expansion")
            await poll(lambda: c[3].partition("t").high_watermark == 7, what="follower HW")
            assert c.log_bytes(1, "t", 7) == c.log_bytes(2, "t", 7) == c.log_bytes(3, "t", 7)
            assert hws == sorted(hws) and leader.high_watermark >= hws[-1]

    run(scenario())


def test_min_insync_replicas_refuses_before_append(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]], {"min.insync.replicas": "2"})
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            await c.produce(1, "t", batch([b"ok"]), acks=-1)
            c.controller.fence(2)
            c.controller.fence(3)
            leader = c[1].partition("t")
            await poll(lambda: leader.isr == (1,), what="ISR of one")
            leo = leader.log_end_offset
            with pytest.raises(KafkaError) as err:
                await c.produce(1, "t", batch([b"no"]), acks=-1)
            assert err.value.code == ErrorCode.NOT_ENOUGH_REPLICAS
            assert leader.log_end_offset == leo
            # acks=1 does not need the ISR.
            r = await c.produce(1, "t", batch([b"one"]), acks=1)
            assert r.base_offset == leo

    run(scenario())


def test_leader_change_old_leader_truncates_and_rejoins(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            await c.produce(1, "t", batch([b"a", b"b"]), acks=-1)
            # Broker 1 gets an unreplicated suffix, then is cut off and fenced.
            c[2].rm.pause_fetchers()
            c[3].rm.pause_fetchers()
            await c.produce(1, "t", batch([b"lost1"]), acks=1)
            old = c[1].partition("t")
            assert (old.log_end_offset, old.high_watermark) == (3, 2)
            c.controller.cut_off.add(1)
            c.controller.fence(1)
            assert c.leader_of("t") == 2 and c.isr_of("t") == (2, 3)
            c[2].rm.resume_fetchers()
            c[3].rm.resume_fetchers()
            await poll(lambda: c[2].partition("t").is_leader, what="new leader")
            r = await c.produce(2, "t", batch([b"c", b"d"]), acks=-1)
            assert r.base_offset == 2
            # The stale leader cannot acknowledge acks=all: nobody fetches from it and
            # it cannot reach the controller to shrink its ISR.
            with pytest.raises(KafkaError) as err:
                await c.produce(1, "t", batch([b"lost2"]), acks=-1, timeout_ms=800)
            assert err.value.code == ErrorCode.REQUEST_TIMED_OUT
            assert old.log_end_offset == 4
            # Reconnected: it follows the new epoch, truncates its divergent suffix
            # (OffsetForLeaderEpoch) and is added back to the ISR.
            c.controller.cut_off.discard(1)
            c.controller.unfence(1)
            await poll(lambda: c.isr_of("t") == (2, 3, 1), timeout_s=5, what="old leader rejoins ISR")
            new_leader = c[2].partition("t")
            await c.produce(2, "t", batch([b"e"]), acks=-1)
            await poll(lambda: old.log_end_offset == 5 and old.high_watermark == 5, what="caught up")
            assert c.log_bytes(1, "t", 5) == c.log_bytes(2, "t", 5) == c.log_bytes(3, "t", 5)
            f = await c.fetch(2, "t", 0)
            assert [v for _, v in values_from(f.records)] == [b"a", b"b", b"c", b"d", b"e"]
            assert new_leader.high_watermark == 5

    run(scenario())


def test_idempotent_producer(tmp_path: Path, log_factory: LogFactory | None) -> None:
    from raftlog.v1 import broker_pb2

    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            init = await c.call(1, "InitProducerId", broker_pb2.InitProducerIdRequest(producer_id=-1, producer_epoch=-1))
            pid, epoch = init.producer_id, init.producer_epoch
            assert epoch == 0
            other = await c.call(1, "InitProducerId", broker_pb2.InitProducerIdRequest(producer_id=-1, producer_epoch=-1))
            assert other.producer_id != pid

            def idem(values: list[bytes], seq: int, ep: int = epoch) -> bytes:
                return batch(values, producer_id=pid, producer_epoch=ep, base_sequence=seq)

            await c.produce(1, "t", batch([b"plain"]))
            first = idem([b"a", b"b"], 0)
            r = await c.produce(1, "t", first)
            assert r.base_offset == 1
            r = await c.produce(1, "t", idem([b"c"], 2))
            assert r.base_offset == 3
            # A retried batch is not written again and answers its original offset.
            r = await c.produce(1, "t", first)
            assert r.base_offset == 1
            assert c[1].partition("t").log_end_offset == 4
            # A gap is refused, and so is an older epoch.
            with pytest.raises(KafkaError) as err:
                await c.produce(1, "t", idem([b"gap"], 5))
            assert err.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
            bumped = await c.call(1, "InitProducerId",
                                  broker_pb2.InitProducerIdRequest(producer_id=pid, producer_epoch=epoch))
            assert (bumped.producer_id, bumped.producer_epoch) == (pid, epoch + 1)
            r = await c.produce(1, "t", idem([b"new-epoch"], 0, epoch + 1))
            assert r.base_offset == 4
            with pytest.raises(KafkaError) as err:
                await c.produce(1, "t", idem([b"old"], 3, epoch))
            assert err.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
            assert c[1].partition("t").log_end_offset == 5
            # A new leader rebuilds the state from its log: the duplicate still is one.
            c.controller.fence(1)
            await poll(lambda: c[2].partition("t").is_leader, what="new leader")
            r = await c.produce(2, "t", idem([b"new-epoch"], 0, epoch + 1))
            assert r.base_offset == 4
            with pytest.raises(KafkaError) as err:
                await c.produce(2, "t", idem([b"gap"], 3, epoch + 1))
            assert err.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
            r = await c.produce(2, "t", idem([b"next"], 1, epoch + 1))
            assert r.base_offset == 5
            assert c[2].partition("t").log_end_offset == 6

    run(scenario())


def test_list_offsets_metadata_and_topic_deletion(tmp_path: Path, log_factory: LogFactory | None) -> None:
    from raftlog.v1 import broker_pb2

    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3], [2, 3, 1]])
            await poll(lambda: c[1].partition("t", 0).is_leader and c[2].partition("t", 1).is_leader, what="leaders")
            await c.produce(1, "t", build_ts([(b"a", 1_000)]) + build_ts([(b"b", 2_000)]))
            await c.produce(1, "t", build_ts([(b"c", 5_000), (b"d", 9_000)]))
            await c.produce(1, "t", batch([b"e"]), acks=-1)
            lo = await c.call(1, "ListOffsets", broker_pb2.ListOffsetsRequest(topic="t", timestamp=-2))
            assert lo.offset == 0
            latest = await c.call(1, "ListOffsets", broker_pb2.ListOffsetsRequest(topic="t", timestamp=-1))
            assert latest.offset == c[1].partition("t").high_watermark
            by_time = await c.call(1, "ListOffsets", broker_pb2.ListOffsetsRequest(topic="t", timestamp=6_000))
            assert (by_time.offset, by_time.timestamp) == (2, 9_000)
            meta = await c.call(3, "Metadata", broker_pb2.MetadataRequest(topics=["t", "missing"]))
            assert [b.broker_id for b in meta.brokers] == [1, 2, 3]
            assert meta.brokers[0].port == c[1].port and meta.brokers[0].host == "127.0.0.1"
            t, missing = meta.topics
            assert missing.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            assert [(p.partition, p.leader, list(p.replicas), list(p.isr)) for p in t.partitions] == [
                (0, 1, [1, 2, 3], [1, 2, 3]), (1, 2, [2, 3, 1], [2, 3, 1])]
            c.controller.fence(3)
            meta = await c.call(1, "Metadata", broker_pb2.MetadataRequest())
            assert list(meta.topics[0].partitions[0].offline_replicas) == [3]
            assert meta.brokers[2].fenced
            # Deleting the topic deletes every replica's data.
            logs = [c[b].partition("t", 0).log for b in (1, 2, 3)]
            c.controller.delete_topic("t")
            await poll(lambda: not any(c[b].rm.partitions for b in (1, 2, 3)), what="partitions gone")
            await poll(lambda: all(not c[b].rm._deleting for b in (1, 2, 3)), what="data deleted")
            if hasattr(logs[0], "deleted"):
                assert all(log.deleted for log in logs)
            with pytest.raises(KafkaError) as err:
                await c.produce(1, "t", batch([b"x"]))
            assert err.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION

    run(scenario())


def build_ts(items: list[tuple[bytes, int]]) -> bytes:
    from raftlog.records import build_batch

    records: list[tuple[bytes | None, bytes | None, int]] = [(None, v, ts) for v, ts in items]
    return build_batch(records)


def test_retention_and_follower_reset_behind_log_start(tmp_path: Path, log_factory: LogFactory | None) -> None:
    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]], {"retention.bytes": "300"})
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            leader = c[1].partition("t")
            c[3].rm.pause_fetchers()
            await c.produce(1, "t", batch([b"first"]), acks=1)
            await poll(lambda: c.isr_of("t") == (1, 2), timeout_s=5, what="3 leaves the ISR")
            for i in range(12):
                await c.produce(1, "t", batch([b"value-%02d" % i]), acks=-1)
            assert leader.high_watermark == 13
            # Retention never deletes at or above the HW; Kafka's size rule keeps at
            # least retention.bytes (a batch goes only if the rest is still >= it).
            await poll(lambda: leader.log.size_bytes < 300 + 80, timeout_s=5, what="retention")
            assert leader.log_start_offset <= leader.high_watermark
            follower = c[3].partition("t")
            assert follower.log_end_offset < leader.log_start_offset
            # The lagging follower finds its offset below the leader's log start: it
            # starts over at the leader's log start and catches up.
            c[3].rm.resume_fetchers()
            await poll(lambda: follower.log_end_offset == 13, timeout_s=5, what="follower reset and caught up")
            await poll(lambda: c.isr_of("t") == (1, 2, 3), timeout_s=5, what="3 back in ISR")
            start = max(follower.log_start_offset, leader.log_start_offset)
            assert c.log_bytes(1, "t", 13)[-50:] == c.log_bytes(3, "t", 13)[-50:]
            assert start <= 13
            with pytest.raises(KafkaError) as err:
                await c.fetch(1, "t", 0)
            assert err.value.code == ErrorCode.OFFSET_OUT_OF_RANGE

    run(scenario())


def test_consumer_long_poll_and_fetch_sessions(tmp_path: Path, log_factory: LogFactory | None) -> None:
    import asyncio
    import time

    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 3, 2], [2, 1, 3], [3, 2, 1]])
            await poll(lambda: all(c[b].rm.partitions[k].is_leader
                                   for b in (1, 2, 3) for k in c[b].rm.partitions
                                   if c.controller.image.topics[k[0]].partitions[k[1]].leader == b),
                       what="leaders")
            # One fetcher (one RPC per round) per leader broker, carrying all its partitions.
            assert {b: sorted(c[b].rm.fetchers) for b in (1, 2, 3)} == {1: [2, 3], 2: [1, 3], 3: [1, 2]}
            assert all(len(f) == 2 for b in (1, 2, 3) for f in c[b].rm.fetchers.values())
            # Nothing to read: the fetch waits max_wait_ms, then answers empty.
            started = time.monotonic()
            f = await c.fetch(1, "t", 0, max_wait_ms=300)
            assert f.records == b"" and time.monotonic() - started >= 0.25
            # A waiting fetch answers as soon as data is below the HW.
            waiting = asyncio.ensure_future(c.fetch(1, "t", 0, max_wait_ms=10_000))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            started = time.monotonic()
            await c.produce(1, "t", batch([b"hello"]), acks=1)
            f = await asyncio.wait_for(waiting, 5)
            assert values_from(f.records) == [(0, b"hello")] and f.high_watermark == 1
            assert time.monotonic() - started < 2
            for pid in range(6):
                leader = c.leader_of("t", pid)
                r = await c.produce(leader, "t", batch([b"p%d" % pid]), pid=pid, acks=-1)
                assert r.base_offset == (1 if pid == 0 else 0)

    run(scenario())


def test_restarted_broker_keeps_its_log_and_rejoins(tmp_path: Path, log_factory: LogFactory | None) -> None:
    if log_factory is not None:
        pytest.skip("needs the persistent PartitionLog")

    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            pid = (await c.call(1, "InitProducerId", __import__("raftlog.v1.broker_pb2", fromlist=["x"])
                                .InitProducerIdRequest(producer_id=-1, producer_epoch=-1))).producer_id
            first = batch([b"a", b"b"], producer_id=pid, producer_epoch=0, base_sequence=0)
            await c.produce(1, "t", first)
            await c.produce(1, "t", batch([b"c"]))
            await poll(lambda: c[2].partition("t").high_watermark == 3, what="follower HW")
            await c[2].rm.checkpoint_high_watermarks()
            # Broker 2 goes away; later the leader too. Broker 2 comes back (new port,
            # new broker epoch), follows, and gets the records it missed.
            await c.stop_broker(2)
            c.controller.fence(2)
            await c.produce(1, "t", batch([b"d"]))
            b2 = await c.restart_broker(2)
            p2 = b2.partition("t")
            assert p2.log_end_offset >= 3 and p2.high_watermark == 3
            await poll(lambda: c.isr_of("t") == (1, 3, 2), timeout_s=5, what="2 rejoins")
            await c.stop_broker(1)
            c.controller.fence(1)
            await poll(lambda: c[2].partition("t").is_leader or c[3].partition("t").is_leader, what="new leader")
            leader = c.leader_of("t")
            # The producer state came back from the log: the retry is still a duplicate.
            r = await c.produce(leader, "t", first)
            assert r.base_offset == 0
            await c.produce(leader, "t", batch([b"e"]))
            f = await c.fetch(leader, "t", 0)
            assert [v for _, v in values_from(f.records)] == [b"a", b"b", b"c", b"d", b"e"]
            assert c.log_bytes(2, "t", 5) == c.log_bytes(3, "t", 5)

    run(scenario())


def test_replica_moved_away_and_back(tmp_path: Path, log_factory: LogFactory | None) -> None:
    from raftlog.v1 import metadata_pb2

    def assign(c: Cluster, replicas: list[int], epoch: int) -> None:
        topic_id = c.controller.image.topic_ids["t"]
        c.controller.commit([metadata_pb2.MetadataRecord(partition=metadata_pb2.PartitionRecord(
            topic_id=topic_id, partition_id=0, replicas=replicas, isr=replicas[:2], leader=1,
            leader_epoch=epoch, partition_epoch=epoch))])

    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3]])
            await poll(lambda: c[1].partition("t").is_leader, what="leader")
            await c.produce(1, "t", batch([b"a"]) + batch([b"b"]))
            old_log = c[3].partition("t").log
            assign(c, [1, 2], 1)
            await poll(lambda: not c[3].rm.partitions and not c[3].rm._deleting, what="3 dropped its replica")
            assert old_log.log_end_offset == 0 or getattr(old_log, "deleted", False)
            with pytest.raises(KafkaError) as err:
                await c.produce(3, "t", batch([b"x"]))
            assert err.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER and err.value.info.leader_id == 1
            assign(c, [1, 2, 3], 2)
            await poll(lambda: bool(c[3].rm.partitions), what="3 hosts it again")
            await poll(lambda: c.isr_of("t") == (1, 2, 3), timeout_s=5, what="3 back in the ISR")
            await poll(lambda: c[3].partition("t").high_watermark == 2, what="3 caught up")
            assert c.log_bytes(1, "t", 2) == c.log_bytes(3, "t", 2)

    run(scenario())


def test_concurrent_produces_get_contiguous_offsets(tmp_path: Path, log_factory: LogFactory | None) -> None:
    import asyncio

    async def scenario() -> None:
        async with Cluster(tmp_path, log_factory=log_factory) as c:
            c.controller.create_topic("t", [[1, 2, 3], [1, 3, 2]])
            await poll(lambda: c[1].partition("t", 0).is_leader and c[1].partition("t", 1).is_leader,
                       what="leaders")
            sizes = [1 + i % 3 for i in range(40)]
            results = await asyncio.gather(*(
                c.produce(1, "t", batch([b"%d-%d" % (i, j) for j in range(n)]), acks=-1 if i % 2 else 1,
                          pid=i % 2)
                for i, n in enumerate(sizes)))
            for pid in (0, 1):
                spans = sorted((r.base_offset, sizes[i]) for i, r in enumerate(results) if i % 2 == pid)
                offset = 0
                for base, n in spans:
                    assert base == offset
                    offset += n
                await poll(lambda: all(c[b].partition("t", pid).high_watermark == offset for b in (1, 2, 3)),
                           what="all replicas at the end")
                assert c.log_bytes(1, "t", offset, pid) == c.log_bytes(2, "t", offset, pid) \
                    == c.log_bytes(3, "t", offset, pid)

    run(scenario())
