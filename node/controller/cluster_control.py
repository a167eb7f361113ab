"""ClusterControlManager: broker registration, fencing and unfencing (Kafka's name).

Pure: each operation reads a MetadataImage and returns a ``ControllerResult``. A
fence or unfence also moves the broker's partition duties, which is the
ReplicationControlManager's part of the decision.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from raftlog.node.controller.replication_control import ReplicationControlManager, leads_anything
from raftlog.node.controller.result import ControllerResult, Record
from raftlog.node.metadata.image import MetadataImage, replayed
from raftlog.errors import ErrorCode, KafkaError
from raftlog.status import error_info_to_pb
from raftlog.v1 import controller_pb2, metadata_pb2
from raftlog.topic_config import echo


class SessionChange(enum.Enum):
    """What a heartbeat asks the controller to write next."""

    NONE = "none"
    FENCE = "fence"
    UNFENCE = "unfence"


@dataclass(frozen=True, slots=True)
class HeartbeatDecision:
    """The answer to one heartbeat, and the fence/unfence it calls for (written by the
    runtime as ``fence_broker``/``unfence_broker``; the answer reflects the committed
    state, so a broker learns it is unfenced only once that is committed)."""

    response: controller_pb2.BrokerHeartbeatResponse
    change: SessionChange = SessionChange.NONE
    reason: str = ""


class ClusterControlManager:
    """Decisions about brokers: who is registered, with which epoch, and fenced or not."""

    def __init__(self, replication: ReplicationControlManager | None = None) -> None:
        self.replication = replication if replication is not None else ReplicationControlManager()

    def register_broker(
        self, image: MetadataImage, request: controller_pb2.RegisterBrokerRequest, next_offset: int
    ) -> ControllerResult[controller_pb2.RegisterBrokerResponse]:
        """Register ``request``'s broker; ``next_offset`` is where the first record will
        be written (the broker epoch is the offset of the registration record).

        A retried request of the incarnation already registered writes nothing (it must
        not bump the broker epoch). A new incarnation registers fenced, as in KRaft: it
        is unfenced once its heartbeats show it caught up with the metadata log. If the
        previous incarnation was still unfenced (it restarted faster than it was
        noticed), it is fenced first, so its leaderships move to in-sync replicas; and
        it leaves every eligible-leader-replica set (see ReplicationControlManager)."""
        record = metadata_pb2.RegisterBrokerRecord(
            broker_id=request.broker_id,
            incarnation_id=request.incarnation_id,
            endpoints=request.endpoints,
            rack=request.rack,
            fenced=True,
        )
        validate_registration(record)
        current = image.brokers.get(request.broker_id)
        if current is not None and current.incarnation_id == request.incarnation_id:
            return ControllerResult.of([], controller_pb2.RegisterBrokerResponse(broker_epoch=current.broker_epoch))
        records = list(self.fence_broker(image, request.broker_id).records)
        if current is not None:
            # A restart: the old incarnation leaves every ELR (decided on the image
            # with the fence applied, which may just have put it in one).
            records += self.replication.handle_broker_restarted(replayed(image, records), request.broker_id)
        records.append(Record(register_broker=record))
        epoch = next_offset + len(records) - 1
        return ControllerResult.of(records, controller_pb2.RegisterBrokerResponse(broker_epoch=epoch))

    def heartbeat(self, image: MetadataImage, request: controller_pb2.BrokerHeartbeatRequest) -> HeartbeatDecision:
        """Kafka's broker heartbeat decisions: a stale epoch is told so; a broker that
        wants to shut down is fenced (its leaderships move) and told to stop once it
        leads nothing; a fenced broker that caught up with the metadata log up to its
        own registration is unfenced."""
        broker = image.brokers.get(request.broker_id)
        if broker is None or broker.broker_epoch != request.broker_epoch:
            error = KafkaError(
                ErrorCode.STALE_BROKER_EPOCH,
                f"broker {request.broker_id} epoch {request.broker_epoch} is not registered",
            )
            return HeartbeatDecision(
                controller_pb2.BrokerHeartbeatResponse(error=error_info_to_pb(error), is_fenced=True)
            )
        caught_up = request.current_metadata_offset >= broker.broker_epoch
        if request.want_shutdown:
            done = broker.fenced and not leads_anything(image, request.broker_id)
            response = controller_pb2.BrokerHeartbeatResponse(
                is_fenced=broker.fenced, is_caught_up=caught_up, should_shut_down=done
            )
            if broker.fenced:
                return HeartbeatDecision(response)
            return HeartbeatDecision(response, SessionChange.FENCE, "controlled shutdown")
        response = controller_pb2.BrokerHeartbeatResponse(is_fenced=broker.fenced, is_caught_up=caught_up)
        if broker.fenced and caught_up:
            return HeartbeatDecision(response, SessionChange.UNFENCE, "caught up")
        return HeartbeatDecision(response)

    def fence_broker(self, image: MetadataImage, broker_id: int, broker_epoch: int | None = None) -> ControllerResult[bool]:
        """Fence a broker (session expired, its process died, controlled shutdown) and
        move its leaderships; only the incarnation ``broker_epoch`` names, when given.
        The response says whether anything changed."""
        broker = image.brokers.get(broker_id)
        if broker is None or broker.fenced or broker_epoch not in (None, broker.broker_epoch):
            return ControllerResult.of([], False)
        fence = Record(fence_broker=metadata_pb2.FenceBrokerRecord(broker_id=broker_id, broker_epoch=broker.broker_epoch))
        return ControllerResult.of([fence, *self.replication.handle_broker_fenced(image, broker_id)], True)

    def unfence_broker(self, image: MetadataImage, broker_id: int, broker_epoch: int | None = None) -> ControllerResult[bool]:
        """Unfence a broker that caught up, and give leaderless partitions back a leader."""
        broker = image.brokers.get(broker_id)
        if broker is None or not broker.fenced or broker_epoch not in (None, broker.broker_epoch):
            return ControllerResult.of([], False)
        unfence = Record(
            unfence_broker=metadata_pb2.UnfenceBrokerRecord(broker_id=broker_id, broker_epoch=broker.broker_epoch)
        )
        return ControllerResult.of([unfence, *self.replication.handle_broker_unfenced(image, broker_id)], True)


#: Bounds of a registration. Every Metadata answer repeats every broker's endpoints,
#: so one oversized registration (35 MB hostnames were accepted) made every later
#: Metadata answer exceed the message limit, for good.
MAX_ENDPOINTS = 16
MAX_HOST_LENGTH = 253  # a DNS name
MAX_LISTENER_NAME_LENGTH = 64


def validate_registration(record: metadata_pb2.RegisterBrokerRecord) -> None:
    """Refuse a registration no broker could have sent (INVALID_REQUEST)."""
    if record.broker_id <= 0:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"broker id must be positive, got {record.broker_id}")
    try:
        uuid.UUID(record.incarnation_id)
    except ValueError as exc:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, f"incarnation id {echo(record.incarnation_id)} is not a UUID"
        ) from exc
    if not record.endpoints:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "a broker registers at least one endpoint")
    if len(record.endpoints) > MAX_ENDPOINTS:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"{len(record.endpoints)} endpoints, more than {MAX_ENDPOINTS}")
    for endpoint in record.endpoints:
        if len(endpoint.host) > MAX_HOST_LENGTH or len(endpoint.name) > MAX_LISTENER_NAME_LENGTH:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                f"endpoint {echo(endpoint.name)}: host of {len(endpoint.host)} characters (at most "
                f"{MAX_HOST_LENGTH}) or listener name of {len(endpoint.name)} (at most {MAX_LISTENER_NAME_LENGTH})",
            )
        if not endpoint.host or not 0 < endpoint.port < 65536:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                f"endpoint {echo(endpoint.name)} has a bad address {echo(endpoint.host)}:{endpoint.port}",
            )
