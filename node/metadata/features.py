"""Finalized feature levels: FeaturesImage and FeaturesDelta."""

from __future__ import annotations

from raftlog.node.metadata._maps import FrozenMapping
from raftlog.v1 import metadata_pb2


class FeaturesImage(FrozenMapping[str, int]):
    """Feature name -> finalized level."""

    __slots__ = ()

    def to_records(self) -> list[metadata_pb2.MetadataRecord]:
        return [
            metadata_pb2.MetadataRecord(
                feature_level=metadata_pb2.FeatureLevelRecord(name=name, feature_level=self[name])
            )
            for name in sorted(self)
        ]


class FeaturesDelta:
    def __init__(self, base: FeaturesImage) -> None:
        self._base = base
        self._features: dict[str, int] | None = None

    def replay(self, rec: metadata_pb2.FeatureLevelRecord) -> None:
        if self._features is None:
            self._features = dict(self._base)
        self._features[rec.name] = rec.feature_level

    def apply(self) -> FeaturesImage:
        return self._base if self._features is None else FeaturesImage(self._features)
