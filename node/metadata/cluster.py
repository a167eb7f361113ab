"""The cluster's brokers: ClusterImage and ClusterDelta (KRaft's names)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from raftlog.node.metadata._maps import FrozenMapping
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
        """The inter-broker address (the first endpoint registered)."""
        return self.endpoints[0].address if self.endpoints else ""

    def endpoint_for(self, listener: str | None) -> Endpoint | None:
        """The endpoint of the named listener; the inter-broker one when it has none."""
        for endpoint in self.endpoints:
            if endpoint.name == listener:
                return endpoint
        return self.endpoints[0] if self.endpoints else None

    def to_record(self) -> metadata_pb2.RegisterBrokerRecord:
        return metadata_pb2.RegisterBrokerRecord(
            broker_id=self.broker_id,
            incarnation_id=self.incarnation_id,
            endpoints=[metadata_pb2.Endpoint(name=e.name, host=e.host, port=e.port) for e in self.endpoints],
            rack=self.rack,
            fenced=self.fenced,
        )


class ClusterImage(FrozenMapping[int, BrokerRegistration]):
    """Registered brokers by id."""

    __slots__ = ()

    def live_brokers(self) -> list[int]:
        """Registered, unfenced broker ids, sorted."""
        return sorted(b.broker_id for b in self.values() if not b.fenced)

    def to_records(self) -> list[metadata_pb2.MetadataRecord]:
        return [
            metadata_pb2.MetadataRecord(register_broker=broker.to_record())
            for broker in sorted(self.values(), key=lambda b: b.broker_id)
        ]


class ClusterDelta:
    """Broker changes over a ClusterImage."""

    def __init__(self, base: ClusterImage) -> None:
        self._base = base
        self._brokers: dict[int, BrokerRegistration] | None = None

    def _w(self) -> dict[int, BrokerRegistration]:
        if self._brokers is None:
            self._brokers = dict(self._base)
        return self._brokers

    def replay_register(self, rec: metadata_pb2.RegisterBrokerRecord, offset: int) -> None:
        self._w()[rec.broker_id] = BrokerRegistration(
            broker_id=rec.broker_id,
            incarnation_id=rec.incarnation_id,
            broker_epoch=offset,
            endpoints=tuple(Endpoint(e.name, e.host, e.port) for e in rec.endpoints),
            rack=rec.rack,
            fenced=rec.fenced,
        )

    def replay_fencing(self, broker_id: int, broker_epoch: int, fenced: bool) -> None:
        current = self._w().get(broker_id)
        # A record for an older incarnation is stale: the broker re-registered since.
        if current is not None and current.broker_epoch == broker_epoch:
            self._w()[broker_id] = replace(current, fenced=fenced)

    def set_epoch(self, broker_id: int, broker_epoch: int) -> None:
        """Restore a broker epoch from a snapshot (its registration offset is gone)."""
        current = self._w().get(broker_id)
        if current is not None:
            self._w()[broker_id] = replace(current, broker_epoch=broker_epoch)

    def apply(self) -> ClusterImage:
        return self._base if self._brokers is None else ClusterImage(self._brokers)
