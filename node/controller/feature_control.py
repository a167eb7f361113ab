"""FeatureControlManager: finalized feature levels (Kafka's name, KIP-584). Pure."""

from __future__ import annotations

import re

from raftlog.node.controller.result import ControllerResult, Record
from raftlog.node.metadata.image import MetadataImage
from raftlog.errors import ErrorCode, KafkaError
from raftlog.status import error_info_to_pb
from raftlog.v1 import admin_pb2, metadata_pb2

MAX_FEATURE_NAME = 249
MAX_FEATURE_LEVEL = 32767  # Kafka's levels are int16
_LEGAL_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")


class FeatureControlManager:
    """Validates UpdateFeatures and writes one FeatureLevelRecord per accepted update."""

    def update_features(
        self, image: MetadataImage, request: admin_pb2.UpdateFeaturesRequest, next_offset: int, epoch: int
    ) -> ControllerResult[admin_pb2.UpdateFeaturesResponse]:
        """Each update is decided on its own (a refused one carries its error in the
        response); ``next_offset``/``epoch`` say where the records will be written."""
        records: list[Record] = []
        response = admin_pb2.UpdateFeaturesResponse()
        seen: set[str] = set()
        for update in request.feature_updates:
            result = response.results.add(feature=update.feature)
            try:
                _validate(update, seen)
            except KafkaError as exc:
                result.error.CopyFrom(error_info_to_pb(exc))
                continue
            seen.add(update.feature)
            records.append(
                Record(
                    feature_level=metadata_pb2.FeatureLevelRecord(
                        name=update.feature, feature_level=update.max_version_level
                    )
                )
            )
        if request.validate_only or not records:
            return ControllerResult.of([], response)
        response.metadata_offset = next_offset + len(records) - 1
        response.metadata_epoch = epoch
        return ControllerResult.of(records, response)


def _validate(update: admin_pb2.FeatureUpdate, seen: set[str]) -> None:
    name = update.feature
    if not name or len(name) > MAX_FEATURE_NAME or not _LEGAL_NAME.match(name):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"feature name {name!r} is not a legal name")
    if name in seen:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"feature {name!r} is updated twice in one request")
    if not 0 <= update.max_version_level <= MAX_FEATURE_LEVEL:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"feature level {update.max_version_level} is outside 0..{MAX_FEATURE_LEVEL}",
        )
