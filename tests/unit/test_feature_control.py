"""FeatureControlManager: UpdateFeatures decided per item, written as FeatureLevelRecords."""

from __future__ import annotations

from raftlog.node.controller.feature_control import FeatureControlManager
from raftlog.node.metadata.image import MetadataImage
from raftlog.errors import ErrorCode
from raftlog.v1 import admin_pb2


def update(*pairs: tuple[str, int], validate_only: bool = False) -> admin_pb2.UpdateFeaturesRequest:
    return admin_pb2.UpdateFeaturesRequest(
        feature_updates=[admin_pb2.FeatureUpdate(feature=f, max_version_level=v) for f, v in pairs],
        validate_only=validate_only,
    )


def test_good_updates_are_written_and_bad_ones_refused_per_item() -> None:
    result = FeatureControlManager().update_features(
        MetadataImage(), update(("a.b", 3), ("bad name", 1), ("c", 40000), ("a.b", 4), ("d", 0)), 11, 2
    )
    assert [(r.feature_level.name, r.feature_level.feature_level) for r in result.records] == [("a.b", 3), ("d", 0)]
    errors = [r.error.error_code if r.HasField("error") else 0 for r in result.response.results]
    assert errors == [0, ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_REQUEST, 0]
    assert (result.response.metadata_offset, result.response.metadata_epoch) == (12, 2)


def test_validate_only_and_all_refused_write_nothing() -> None:
    manager = FeatureControlManager()
    assert manager.update_features(MetadataImage(), update(("a", 1), validate_only=True), 1, 1).records == ()
    refused = manager.update_features(MetadataImage(), update(("", 1)), 1, 1)
    assert refused.records == () and refused.response.metadata_offset == 0
