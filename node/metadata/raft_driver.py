"""The metadata quorum's Raft driver: the generic driver applying to the MetadataLoader,
plus what only metadata knows (the current image, brokers' registered addresses)."""

from __future__ import annotations

from raftlog.node.metadata.image import MetadataImage
from raftlog.node.metadata.loader import MetadataLoader
from raftlog.node.quorum.driver import RaftDriver


class MetadataRaftDriver(RaftDriver[MetadataLoader]):
    """A ``RaftDriver`` whose state machine is the metadata loader."""

    @property
    def loader(self) -> MetadataLoader:
        return self.state_machine

    @property
    def image(self) -> MetadataImage:
        """The committed metadata image of this node."""
        return self.state_machine.image

    def address_of(self, node_id: int) -> str:
        """A node's registered (inter-broker) endpoint, else its voter address."""
        broker = self.state_machine.image.brokers.get(node_id)
        if broker is not None and broker.address:
            return broker.address
        return super().address_of(node_id)
