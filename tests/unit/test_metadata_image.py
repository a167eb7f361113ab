"""MetadataImage/Delta/Loader: one replay path for log entries and snapshots."""

from __future__ import annotations

import uuid

import pytest

from raftlog.node.controller.cluster_control import ClusterControlManager
from raftlog.node.controller.quorum_controller import NO_OP
from raftlog.node.metadata.image import MetadataImage
from raftlog.node.metadata.loader import MetadataLoader
from raftlog.errors import ErrorCode, KafkaError
from raftlog.raft.types import Entry
from raftlog.v1 import controller_pb2, metadata_pb2


def register_request(broker_id: int, incarnation: str | None = None) -> controller_pb2.RegisterBrokerRequest:
    return controller_pb2.RegisterBrokerRequest(
        broker_id=broker_id,
        incarnation_id=incarnation or str(uuid.uuid4()),
        endpoints=[metadata_pb2.Endpoint(name="INTERNAL", host="127.0.0.1", port=9090 + broker_id)],
    )


def entries_for(records: list[metadata_pb2.MetadataRecord], start: int, term: int) -> list[Entry]:
    return [Entry(term=term, index=start + i, data=r.SerializeToString()) for i, r in enumerate(records)]


def test_registration_is_applied_with_offset_as_broker_epoch() -> None:
    controller = ClusterControlManager()
    loader = MetadataLoader(node_id=1)
    records = list(controller.register_broker(loader.image, register_request(2), 0).records)
    image = loader.apply_entries([Entry(term=1, index=1)] + entries_for(records, 2, 1))
    assert image.offset == 2 and image.epoch == 1
    assert image.brokers[2].broker_epoch == 2
    assert image.brokers[2].address == "127.0.0.1:9092"


def test_reregistration_of_same_incarnation_is_a_no_op_and_restart_bumps_epoch() -> None:
    controller = ClusterControlManager()
    loader = MetadataLoader(node_id=1)
    req = register_request(3)
    loader.apply_entries(entries_for(list(controller.register_broker(loader.image, req, 0).records), 1, 1))
    assert list(controller.register_broker(loader.image, req, 0).records) == []
    restarted = register_request(3)
    records = list(controller.register_broker(loader.image, restarted, 0).records)
    # The old incarnation was never unfenced, so there is nothing to fence first.
    assert [r.WhichOneof("record") for r in records] == ["register_broker"]
    image = loader.apply_entries(entries_for(records, 2, 2))
    assert image.brokers[3].incarnation_id == restarted.incarnation_id
    assert image.brokers[3].broker_epoch == 2 and image.brokers[3].fenced


def test_restart_of_an_unfenced_broker_fences_the_old_incarnation_first() -> None:
    controller = ClusterControlManager()
    loader = MetadataLoader(node_id=1)
    loader.apply_entries(entries_for(list(controller.register_broker(loader.image, register_request(3), 0).records), 1, 1))
    unfence = metadata_pb2.MetadataRecord(
        unfence_broker=metadata_pb2.UnfenceBrokerRecord(broker_id=3, broker_epoch=1)
    )
    assert not loader.apply_entries(entries_for([unfence], 2, 1)).brokers[3].fenced
    records = list(controller.register_broker(loader.image, register_request(3), 0).records)
    assert [r.WhichOneof("record") for r in records] == ["fence_broker", "register_broker"]
    image = loader.apply_entries(entries_for(records, 3, 1))
    assert image.brokers[3].broker_epoch == 4 and image.brokers[3].fenced


def test_images_are_immutable_and_old_images_unchanged() -> None:
    controller = ClusterControlManager()
    loader = MetadataLoader(node_id=1)
    before = loader.image
    loader.apply_entries(entries_for(list(controller.register_broker(before, register_request(1), 0).records), 1, 1))
    assert 1 not in before.brokers
    with pytest.raises(TypeError):
        loader.image.brokers[9] = loader.image.brokers[1]  # type: ignore[index]


def test_snapshot_round_trip_rebuilds_the_same_image() -> None:
    controller = ClusterControlManager()
    loader = MetadataLoader(node_id=1)
    records = []
    for broker_id in (1, 2, 3):
        records += list(controller.register_broker(loader.image, register_request(broker_id), 0).records)
    records.append(
        metadata_pb2.MetadataRecord(
            feature_level=metadata_pb2.FeatureLevelRecord(name="metadata.version", feature_level=3)
        )
    )
    loader.apply_entries(entries_for(records, 5, 2))
    other = MetadataLoader(node_id=2)
    restored = other.load_snapshot(loader.snapshot_data())
    assert restored == loader.image
    # Entries at or below the snapshot offset are not applied twice.
    assert other.apply_entries(entries_for(records, 5, 2)) == loader.image


def test_no_op_entries_and_records_advance_the_offset_only() -> None:
    loader = MetadataLoader(node_id=1)
    noop = NO_OP
    image = loader.apply_entries([Entry(term=4, index=7)] + entries_for([noop], 8, 4))
    assert (image.offset, image.epoch, dict(image.brokers)) == (8, 4, {})


def test_undecodable_committed_record_is_skipped_identically() -> None:
    loader = MetadataLoader(node_id=1)
    image = loader.apply_entries([Entry(term=1, index=1, data=b"\xff\xff\xff")])
    assert image == MetadataImage(offset=1, epoch=1)


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (controller_pb2.RegisterBrokerRequest(broker_id=0, incarnation_id=str(uuid.uuid4())), "positive"),
        (controller_pb2.RegisterBrokerRequest(broker_id=1, incarnation_id="nope"), "UUID"),
        (controller_pb2.RegisterBrokerRequest(broker_id=1, incarnation_id=str(uuid.uuid4())), "endpoint"),
        (
            controller_pb2.RegisterBrokerRequest(
                broker_id=1,
                incarnation_id=str(uuid.uuid4()),
                endpoints=[metadata_pb2.Endpoint(name="X", host="h", port=70000)],
            ),
            "bad address",
        ),
    ],
)
def test_bad_registrations_are_rejected(request_: controller_pb2.RegisterBrokerRequest, fragment: str) -> None:
    with pytest.raises(KafkaError) as info:
        ClusterControlManager().register_broker(MetadataImage(), request_, 1)
    assert info.value.code == ErrorCode.INVALID_REQUEST
    assert fragment in str(info.value)
