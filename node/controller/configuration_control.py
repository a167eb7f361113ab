"""ConfigurationControlManager: topic configs (Kafka's name). Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from raftlog.node.controller.result import ControllerResult, Record
from raftlog.node.metadata.image import MetadataImage, replayed
from raftlog.errors import ErrorCode, KafkaError
from raftlog.topic_config import CONFIG_DEFS, TopicConfig, echo, effective_configs, validate_configs
from raftlog.v1 import admin_pb2, metadata_pb2


def config_record(resource: str, name: str, value: str = "", *, delete: bool = False) -> Record:
    return Record(config=metadata_pb2.ConfigRecord(resource_name=resource, name=name, value=value, delete=delete))


#: (image with the new configs, topic name) -> partition changes (Kafka's
#: minIsrConfigUpdatePartitionHandler: a new min.insync.replicas can end an ELR).
MinIsrChangeHandler = Callable[[MetadataImage, str], list[Record]]


class ConfigurationControlManager:
    """Validates topic configs and turns changes into ConfigRecords."""

    def __init__(self, min_isr_changed: MinIsrChangeHandler | None = None) -> None:
        self.min_isr_changed = min_isr_changed

    def create_topic_configs(self, name: str, configs: Mapping[str, str], replication_factor: int) -> list[Record]:
        """The records for a new topic's configs (only those set; defaults are implied)."""
        checked = validate_configs(configs)
        if TopicConfig.of(checked).min_insync_replicas > replication_factor:
            raise KafkaError(
                ErrorCode.INVALID_CONFIG,
                f"min.insync.replicas={checked['min.insync.replicas']} is above the replication factor "
                f"{replication_factor}",
            )
        return [config_record(name, key, checked[key]) for key in sorted(checked)]

    def alter_configs(
        self, image: MetadataImage, request: admin_pb2.AlterConfigsRequest
    ) -> ControllerResult[admin_pb2.AlterConfigsResponse]:
        """Set some configs and reset others to their defaults (Kafka's incremental alter)."""
        name, set_configs, delete = request.topic, dict(request.set), list(request.delete)
        topic = image.topic_by_name(name)
        if topic is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {echo(name)} does not exist")
        checked = validate_configs(set_configs)
        validate_configs({key: CONFIG_DEFS[key].default for key in delete if key in CONFIG_DEFS})
        unknown = [key for key in delete if key not in CONFIG_DEFS]
        if unknown:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"unknown topic config {unknown[0]!r}")
        merged = {**image.configs.get(name, {}), **checked}
        for key in delete:
            merged.pop(key, None)
        rf = min((len(p.replicas) for p in topic.partitions.values()), default=1)
        if TopicConfig.of(merged).min_insync_replicas > rf:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"min.insync.replicas is above the replication factor {rf}")
        records = [config_record(name, k, v) for k, v in sorted(checked.items())]
        records += [config_record(name, k, delete=True) for k in sorted(delete)]
        if self.min_isr_changed is not None:
            after = replayed(image, records)
            records += self.min_isr_changed(after, name)
        return ControllerResult.of(records, admin_pb2.AlterConfigsResponse(configs=effective_configs(merged)))

