"""Producer id blocks: ProducerIdsImage and ProducerIdsDelta (KRaft's names)."""

from __future__ import annotations

from dataclasses import dataclass

from raftlog.v1 import metadata_pb2


@dataclass(frozen=True, slots=True)
class ProducerIdsImage:
    next_producer_id: int = 0
    """The first producer id not yet handed out."""

    def to_records(self) -> list[metadata_pb2.MetadataRecord]:
        if not self.next_producer_id:
            return []
        return [
            metadata_pb2.MetadataRecord(
                producer_ids=metadata_pb2.ProducerIdsRecord(next_producer_id=self.next_producer_id)
            )
        ]


class ProducerIdsDelta:
    def __init__(self, base: ProducerIdsImage) -> None:
        self._next = base.next_producer_id
        self._base = base

    def replay(self, rec: metadata_pb2.ProducerIdsRecord) -> None:
        self._next = max(self._next, rec.next_producer_id)

    def apply(self) -> ProducerIdsImage:
        return self._base if self._next == self._base.next_producer_id else ProducerIdsImage(self._next)
