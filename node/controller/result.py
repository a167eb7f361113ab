"""What every controller operation returns (Kafka's ``ControllerResult``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from raftlog.v1 import metadata_pb2

R = TypeVar("R")

Record = metadata_pb2.MetadataRecord


@dataclass(frozen=True, slots=True)
class ControllerResult(Generic[R]):
    """The records that carry a decision out and the response to send once they are
    committed. Operations are pure: they read the controller state and return this;
    only the runtime (``QuorumController``) appends the records."""

    records: Sequence[Record]
    response: R

    @staticmethod
    def of(records: Sequence[Record], response: R) -> ControllerResult[R]:
        return ControllerResult(tuple(records), response)
