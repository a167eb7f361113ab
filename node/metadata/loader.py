"""MetadataLoader: feeds committed Raft entries and snapshots into MetadataImages."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from google.protobuf.message import DecodeError

from raftlog.node.metadata.image import MetadataDelta, MetadataImage
from raftlog.raft.types import Entry
from raftlog.v1 import metadata_pb2


class MetadataLoader:
    """Holds the current image of one node; only committed entries reach it."""

    def __init__(self, node_id: int) -> None:
        self._image = MetadataImage()
        self._log = structlog.get_logger("metadata").bind(node_id=node_id)

    @property
    def image(self) -> MetadataImage:
        return self._image

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
                # Proposals are validated before they enter the log, so this is a bug or
                # disk damage; every node skips the same bytes, so images stay identical.
                self._log.error("undecodable metadata record skipped", offset=entry.index)
                delta.advance(entry.index, entry.term)
                continue
            delta.replay(record, offset=entry.index, epoch=entry.term)
        self._image = delta.apply()
        return self._image

    def load_snapshot(self, data: bytes) -> MetadataImage:
        snap = metadata_pb2.MetadataSnapshot()
        snap.ParseFromString(data)
        self._image = MetadataImage.from_snapshot(snap)
        self._log.info("metadata snapshot loaded", offset=self._image.offset)
        return self._image

    def snapshot_data(self) -> bytes:
        return self._image.to_snapshot().SerializeToString(deterministic=True)
