"""The active controller (Kafka's QuorumController and its *ControlManagers).

- ``quorum_controller``: the runtime that runs every operation the same way.
- ``cluster_control``, ``replication_control``, ``configuration_control``,
  ``producer_id_control``, ``feature_control``: pure operations,
  ``(image, request) -> ControllerResult`` (``result``).
- ``broker_heartbeat_manager``: broker sessions (soft state) on the active controller.
- ``broker_registration``: this node's own registration with the active controller.
- ``errors``: Raft driver errors -> Kafka error codes.
"""
