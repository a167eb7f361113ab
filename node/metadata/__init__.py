"""Cluster metadata as every node sees it (KRaft's metadata image).

- ``image``: MetadataImage / MetadataDelta, composed of one image/delta pair per
  domain: ``cluster`` (brokers), ``features``, ``topics`` (and partitions),
  ``configs``, ``producer_ids``.
- ``loader``: MetadataLoader, the Raft driver's state machine: applies committed
  entries and snapshots, publishes each new image (``publisher``).
- ``raft_driver``: the Raft driver of the metadata quorum.
"""
