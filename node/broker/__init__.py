"""The broker side of a node: partition replicas, leader/follower roles, HW, ISR.

Wiring (in the node process)::

    replicas = ReplicaManager(node_id, db, BrokerConfig(), grpc_peer_factory, controller_client)
    await replicas.start()
    # after every applied metadata batch, on the event loop:
    replicas.on_metadata(image)
    # servicers:
    BrokerService(node_id, cluster_id, replicas, replicas.allocate_producer_ids, controller_id)
    ReplicationService(node_id, replicas)
    ...
    await replicas.stop()   # after the gRPC server stopped, before db.close()
"""

from raftlog.node.broker.clients import ControllerClient, PeerClientFactory, ReplicationPeer, grpc_peer_factory
from raftlog.node.broker.config import BrokerConfig
from raftlog.node.broker.replica_manager import ReplicaManager

__all__ = [
    "BrokerConfig",
    "ControllerClient",
    "PeerClientFactory",
    "ReplicaManager",
    "ReplicationPeer",
    "grpc_peer_factory",
]
