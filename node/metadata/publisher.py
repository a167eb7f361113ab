"""Metadata publishers: whoever acts on new MetadataImages subscribes to the loader
(KRaft's MetadataPublisher; the broker's replica manager is one)."""

from __future__ import annotations

from collections.abc import Callable

from raftlog.node.metadata.image import MetadataImage

#: Called on the event loop with each new image, in order, after it is applied.
MetadataPublisher = Callable[[MetadataImage], None]
