"""MetadataLoader: feeds committed Raft entries and snapshots into MetadataImages and
publishes each new image to its subscribers. It is the Raft driver's StateMachine."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import DecodeError

from raftlog.node.logging import get_logger
from raftlog.node.metadata.image import MetadataDelta, MetadataImage
from raftlog.node.metadata.publisher import MetadataPublisher
from raftlog.raft.types import Entry
from raftlog.v1 import metadata_pb2


class MetadataLoader:
    """Holds the current image of one node; only committed entries reach it."""

    def __init__(self, node_id: int) -> None:
        self._image = MetadataImage()
        self._publishers: list[MetadataPublisher] = []
        self.logger = get_logger("metadata", node_id)

    @property
    def image(self) -> MetadataImage:
        return self._image

    def subscribe(self, publisher: MetadataPublisher) -> None:
        """Call ``publisher`` with every image applied from now on."""
        self._publishers.append(publisher)

    # ------------------------------------------------------------------ StateMachine
    @property
    def applied_index(self) -> int:
        return self._image.offset

    def apply(self, entries: Sequence[Entry]) -> None:
        self.apply_entries(entries)

    def snapshot(self) -> bytes:
        return self.snapshot_data()

    def restore(self, data: bytes) -> None:
        self.load_snapshot(data)

    def check_snapshot(self, data: bytes) -> None:
        """Raise ValueError unless ``data`` restores: checked before a received
        snapshot is persisted, since one that does not would crash the node on every
        start from then on."""
        _decode_snapshot(data)

    # ------------------------------------------------------------------ images
    def apply_entries(self, entries: Sequence[Entry]) -> MetadataImage:
        """Apply committed entries in order; entries with no data are Raft no-ops."""
        if not entries:
            return self._image
        delta = MetadataDelta(self._image)
        for entry in entries:
            if entry.index <= self._image.offset:
                continue  # already in the image (e.g. replayed after a snapshot load)
            if not entry.data:
                delta.advance(entry.index, entry.term)
                continue
            record = metadata_pb2.MetadataRecord()
            try:
                record.ParseFromString(entry.data)
            except DecodeError:
                # Records are written only by the controller, so this is a bug or disk
                # damage; every node skips the same bytes, so images stay identical.
                self.logger.error("undecodable metadata record skipped", offset=entry.index)
                delta.advance(entry.index, entry.term)
                continue
            delta.replay(record, offset=entry.index, epoch=entry.term)
        self._image = delta.apply()
        self._publish()
        return self._image

    def load_snapshot(self, data: bytes) -> MetadataImage:
        """Replace the image with a snapshot's; ValueError when it does not decode."""
        self._image = _decode_snapshot(data)
        self.logger.info("metadata snapshot loaded", offset=self._image.offset)
        self._publish()
        return self._image

    def snapshot_data(self) -> bytes:
        return self._image.to_snapshot().SerializeToString(deterministic=True)

    def _publish(self) -> None:
        for publisher in self._publishers:
            try:
                publisher(self._image)
            except Exception as exc:  # noqa: BLE001 - a publisher's bug must not stop Raft
                self.logger.error("metadata publisher failed", error=repr(exc), exc_info=True)


def _decode_snapshot(data: bytes) -> MetadataImage:
    try:
        snap = metadata_pb2.MetadataSnapshot()
        snap.ParseFromString(data)
        return MetadataImage.from_snapshot(snap)
    except Exception as exc:  # noqa: BLE001 - undecodable or inconsistent: either way unusable
        raise ValueError(f"metadata snapshot does not decode: {exc!r}"[:300]) from exc
