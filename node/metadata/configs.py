"""Topic configs: ConfigurationsImage and ConfigurationsDelta (KRaft's names)."""

from __future__ import annotations

from collections.abc import Mapping

from raftlog.node.metadata._maps import FrozenMapping, frozen_map
from raftlog.v1 import metadata_pb2


class ConfigurationsImage(FrozenMapping[str, Mapping[str, str]]):
    """Resource (topic) name -> the configs set on it (defaults are not stored)."""

    __slots__ = ()

    def to_records(self) -> list[metadata_pb2.MetadataRecord]:
        return [
            metadata_pb2.MetadataRecord(
                config=metadata_pb2.ConfigRecord(resource_name=resource, name=name, value=self[resource][name])
            )
            for resource in sorted(self)
            for name in sorted(self[resource])
        ]


class ConfigurationsDelta:
    def __init__(self, base: ConfigurationsImage) -> None:
        self._base = base
        self._configs: dict[str, Mapping[str, str]] | None = None

    def _w(self) -> dict[str, Mapping[str, str]]:
        if self._configs is None:
            self._configs = dict(self._base)
        return self._configs

    def replay(self, rec: metadata_pb2.ConfigRecord) -> None:
        configs = self._w()
        values = dict(configs.get(rec.resource_name, {}))
        if rec.delete:
            values.pop(rec.name, None)
        else:
            values[rec.name] = rec.value
        if values:
            configs[rec.resource_name] = frozen_map(values)
        else:
            configs.pop(rec.resource_name, None)

    def remove_resource(self, name: str) -> None:
        """A deleted topic takes its configs with it."""
        self._w().pop(name, None)

    def apply(self) -> ConfigurationsImage:
        return self._base if self._configs is None else ConfigurationsImage(self._configs)
