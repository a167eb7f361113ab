"""MetadataImage: the immutable view of cluster metadata every node applies.

KRaft's idea: committed records are replayed into a ``MetadataDelta`` over the
current image, and ``apply()`` yields the next image. This is the only way
metadata changes — on the leader, on followers, and when a snapshot loads — so
readers always see one consistent image and no second code path can drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

from raftlog.v1 import metadata_pb2


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BrokerRegistration:
    broker_id: int
    incarnation_id: str
    broker_epoch: int
    """The metadata offset of this registration: a restart gets a larger one."""
    endpoints: tuple[Endpoint, ...]
    rack: str = ""
    fenced: bool = False

    @property
    def address(self) -> str:
        return self.endpoints[0].address if self.endpoints else ""


K = TypeVar("K")
V = TypeVar("V")


def _frozen_map(items: Mapping[K, V] | None = None) -> Mapping[K, V]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True, slots=True)
class MetadataImage:
    offset: int = 0
    """Raft index of the last record applied (KRaft's metadata offset)."""
    epoch: int = 0
    """Raft term of that record."""
    brokers: Mapping[int, BrokerRegistration] = field(default_factory=_frozen_map)
    features: Mapping[str, int] = field(default_factory=_frozen_map)

    def to_snapshot(self) -> metadata_pb2.MetadataSnapshot:
        """The records that rebuild this image (KRaft snapshots are records too)."""
        snap = metadata_pb2.MetadataSnapshot(offset=self.offset, epoch=self.epoch)
        for broker in sorted(self.brokers.values(), key=lambda b: b.broker_id):
            snap.records.append(
                metadata_pb2.MetadataRecord(register_broker=registration_record(broker))
            )
            snap.broker_epochs.append(
                metadata_pb2.BrokerEpoch(broker_id=broker.broker_id, broker_epoch=broker.broker_epoch)
            )
        for name in sorted(self.features):
            snap.records.append(
                metadata_pb2.MetadataRecord(
                    feature_level=metadata_pb2.FeatureLevelRecord(
                        name=name, feature_level=self.features[name]
                    )
                )
            )
        return snap

    @classmethod
    def from_snapshot(cls, snap: metadata_pb2.MetadataSnapshot) -> MetadataImage:
        epochs = {b.broker_id: b.broker_epoch for b in snap.broker_epochs}
        delta = MetadataDelta(cls())
        for record in snap.records:
            delta.replay(record, offset=snap.offset, epoch=snap.epoch)
        image = delta.apply()
        brokers = {
            bid: replace(b, broker_epoch=epochs.get(bid, b.broker_epoch))
            for bid, b in image.brokers.items()
        }
        return replace(image, brokers=_frozen_map(brokers))


def registration_record(broker: BrokerRegistration) -> metadata_pb2.RegisterBrokerRecord:
    return metadata_pb2.RegisterBrokerRecord(
        broker_id=broker.broker_id,
        incarnation_id=broker.incarnation_id,
        endpoints=[
            metadata_pb2.Endpoint(name=e.name, host=e.host, port=e.port) for e in broker.endpoints
        ],
        rack=broker.rack,
        fenced=broker.fenced,
    )


class MetadataDelta:
    """Changes accumulated over a base image; ``apply()`` makes the next image."""

    def __init__(self, base: MetadataImage) -> None:
        self._base = base
        self._offset = base.offset
        self._epoch = base.epoch
        self._brokers: dict[int, BrokerRegistration] | None = None
        self._features: dict[str, int] | None = None

    def advance(self, offset: int, epoch: int) -> None:
        """Move the offset past an entry that carries no record (a Raft no-op)."""
        self._offset = max(self._offset, offset)
        self._epoch = max(self._epoch, epoch)

    def replay(self, record: metadata_pb2.MetadataRecord, offset: int, epoch: int) -> None:
        self.advance(offset, epoch)
        kind = record.WhichOneof("record")
        if kind == "register_broker":
            self._replay_register(record.register_broker, offset)
        elif kind == "feature_level":
            if self._features is None:
                self._features = dict(self._base.features)
            self._features[record.feature_level.name] = record.feature_level.feature_level
        # no_op and unset records change nothing but the offset (KIP-835).

    def _replay_register(self, rec: metadata_pb2.RegisterBrokerRecord, offset: int) -> None:
        if self._brokers is None:
            self._brokers = dict(self._base.brokers)
        self._brokers[rec.broker_id] = BrokerRegistration(
            broker_id=rec.broker_id,
            incarnation_id=rec.incarnation_id,
            broker_epoch=offset,
            endpoints=tuple(Endpoint(e.name, e.host, e.port) for e in rec.endpoints),
            rack=rec.rack,
            fenced=rec.fenced,
        )

    def apply(self) -> MetadataImage:
        return MetadataImage(
            offset=self._offset,
            epoch=self._epoch,
            brokers=self._base.brokers if self._brokers is None else _frozen_map(self._brokers),
            features=self._base.features if self._features is None else _frozen_map(self._features),
        )
