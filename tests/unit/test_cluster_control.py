"""ClusterControlManager's heartbeat decisions (pure)."""

from __future__ import annotations

from raftlog.node.controller.cluster_control import ClusterControlManager, SessionChange
from raftlog.errors import ErrorCode
from raftlog.v1 import controller_pb2
from tests.unit.controller_ops import fence_broker
from tests.unit.test_controller_topics import Cluster


def beat(cluster: Cluster, broker_id: int, **fields: object) -> controller_pb2.BrokerHeartbeatRequest:
    epoch = cluster.image.brokers[broker_id].broker_epoch
    return controller_pb2.BrokerHeartbeatRequest(broker_id=broker_id, broker_epoch=epoch, **fields)  # type: ignore[arg-type]


def test_heartbeat_decisions() -> None:
    cluster = Cluster(brokers=2)
    manager = ClusterControlManager()
    stale = manager.heartbeat(cluster.image, controller_pb2.BrokerHeartbeatRequest(broker_id=1, broker_epoch=999))
    assert stale.response.error.error_code == ErrorCode.STALE_BROKER_EPOCH and stale.change is SessionChange.NONE

    live = manager.heartbeat(cluster.image, beat(cluster, 1, current_metadata_offset=cluster.image.offset))
    assert not live.response.is_fenced and live.change is SessionChange.NONE

    shutdown = manager.heartbeat(cluster.image, beat(cluster, 1, want_shutdown=True))
    assert shutdown.change is SessionChange.FENCE and not shutdown.response.should_shut_down
    cluster.commit(fence_broker(cluster.image, 1))
    done = manager.heartbeat(cluster.image, beat(cluster, 1, want_shutdown=True))
    assert done.change is SessionChange.NONE and done.response.should_shut_down

    behind = manager.heartbeat(cluster.image, beat(cluster, 1, current_metadata_offset=0))
    assert behind.response.is_fenced and behind.change is SessionChange.NONE
    caught_up = manager.heartbeat(cluster.image, beat(cluster, 1, current_metadata_offset=cluster.image.offset))
    assert caught_up.change is SessionChange.UNFENCE
