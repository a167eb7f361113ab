"""The active controller's decisions: pure functions from (image, request) to records.

Nothing here changes state. A decision becomes real only when its records are
committed by the quorum and replayed into the next MetadataImage.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from google.protobuf.message import DecodeError

from raftlog.node.metadata.image import MetadataImage
from raftlog.node.controller.partitions import fence_broker
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import controller_pb2, metadata_pb2

MAX_RECORD_BYTES = 1 << 20


class QuorumController:
    """Validates requests and turns them into metadata records."""

    def register_broker(
        self, image: MetadataImage, request: controller_pb2.RegisterBrokerRequest
    ) -> list[metadata_pb2.MetadataRecord]:
        """Records that register ``request``'s broker; empty when this very incarnation
        is already registered (a retried request must not bump the broker epoch).

        A new incarnation registers fenced, as in KRaft: it is unfenced once its
        heartbeats show it caught up with the metadata log. If the previous
        incarnation was still unfenced (it restarted faster than it was noticed),
        it is fenced first, so its leaderships move to in-sync replicas."""
        record = metadata_pb2.RegisterBrokerRecord(
            broker_id=request.broker_id,
            incarnation_id=request.incarnation_id,
            endpoints=request.endpoints,
            rack=request.rack,
            fenced=True,
        )
        _validate_registration(record)
        current = image.brokers.get(request.broker_id)
        if current is not None and current.incarnation_id == request.incarnation_id:
            return []
        return [*fence_broker(image, request.broker_id), metadata_pb2.MetadataRecord(register_broker=record)]

    def validate_records(self, records: Sequence[bytes]) -> None:
        """Reject anything that is not a well-formed MetadataRecord before it is proposed."""
        if not records:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "no records to propose")
        for i, data in enumerate(records):
            if len(data) > MAX_RECORD_BYTES:
                raise KafkaError(
                    ErrorCode.INVALID_RECORD, f"record {i} is {len(data)} bytes, over {MAX_RECORD_BYTES}"
                )
            record = metadata_pb2.MetadataRecord()
            try:
                record.ParseFromString(data)
            except DecodeError as exc:
                raise KafkaError(ErrorCode.INVALID_RECORD, f"record {i} does not decode: {exc}") from exc
            kind = record.WhichOneof("record")
            if kind is None:
                raise KafkaError(ErrorCode.INVALID_RECORD, f"record {i} has no record type set")
            if kind == "register_broker":
                _validate_registration(record.register_broker)

    def no_op_record(self) -> metadata_pb2.MetadataRecord:
        return metadata_pb2.MetadataRecord(no_op=metadata_pb2.NoOpRecord())


def _validate_registration(record: metadata_pb2.RegisterBrokerRecord) -> None:
    if record.broker_id <= 0:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"broker id must be positive, got {record.broker_id}")
    try:
        uuid.UUID(record.incarnation_id)
    except ValueError as exc:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, f"incarnation id {record.incarnation_id!r} is not a UUID"
        ) from exc
    if not record.endpoints:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "a broker registers at least one endpoint")
    for endpoint in record.endpoints:
        if not endpoint.host or not 0 < endpoint.port < 65536:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                f"endpoint {endpoint.name!r} has a bad address {endpoint.host}:{endpoint.port}",
            )
