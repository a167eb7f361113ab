"""Client settings, with Kafka's names and defaults.

Settings are given as keyword arguments in kafka-python's spelling
(``Producer(bootstrap_servers="h:9092", linger_ms=5)``) or as a confluent-kafka
style dict with dotted names (``Producer({"bootstrap.servers": "h:9092"})``); both
end up in one typed, validated dataclass. An unknown name or a bad value raises
:class:`~raftlog.client.errors.KafkaConfigurationError` naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from raftlog.client.errors import KafkaConfigurationError
from raftlog.client.serializers import Deserializer, Serializer, as_deserializer, as_serializer

C = TypeVar("C", bound="CommonConfig")

COMPRESSION_TYPES = ("none", "gzip", "snappy", "lz4", "zstd")


def parse_bootstrap(servers: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"a:1,b:2"`` or ``["a:1", "b:2"]`` -> ``["a:1", "b:2"]``; raises on an empty list
    or an entry without a port."""
    items = servers.split(",") if isinstance(servers, str) else list(servers)
    out: list[str] = []
    for item in items:
        address = str(item).strip()
        if not address:
            continue
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise KafkaConfigurationError(f"bootstrap_servers entry {address!r} is not host:port")
        out.append(address)
    if not out:
        raise KafkaConfigurationError("bootstrap_servers is empty: give at least one host:port")
    return out


@dataclass
class CommonConfig:
    """Settings every client has."""

    bootstrap_servers: list[str] = field(default_factory=list)
    client_id: str = "raftlog-python"
    request_timeout_ms: int = 30_000
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 1_000
    metadata_max_age_ms: int = 300_000
    max_message_size: int = 64 * 1024 * 1024  # gRPC message limit of the client's channels

    def validate(self) -> None:
        """Raise KafkaConfigurationError for a value that is not allowed."""
        self.bootstrap_servers = parse_bootstrap(self.bootstrap_servers)
        for name in ("request_timeout_ms", "retry_backoff_ms", "retry_backoff_max_ms", "metadata_max_age_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == "request_timeout_ms" else 0):
                raise KafkaConfigurationError(f"{name}={value!r} must be a non-negative integer")


@dataclass
class ProducerConfig(CommonConfig):
    """Producer settings (Kafka's producer configs, snake_case)."""

    acks: int | str = "all"
    enable_idempotence: bool | None = None  # None: on, unless acks/retries say otherwise
    linger_ms: int = 5
    batch_size: int = 16_384
    max_request_size: int = 1_048_576
    buffer_memory: int = 32 * 1024 * 1024
    max_block_ms: int = 60_000
    block_on_buffer_full: bool = True
    max_in_flight_requests_per_connection: int = 5
    retries: int = 2_147_483_647
    delivery_timeout_ms: int = 120_000
    compression_type: str | None = None
    key_serializer: Any = None
    value_serializer: Any = None
    partitioner: Callable[[bytes | None, list[int], list[int]], int] | None = None

    # resolved by validate()
    required_acks: int = field(init=False, default=-1)
    idempotent: bool = field(init=False, default=True)
    compression_codec: int = field(init=False, default=0)
    key_ser: Serializer = field(init=False, repr=False, default=None)  # type: ignore[assignment]
    value_ser: Serializer = field(init=False, repr=False, default=None)  # type: ignore[assignment]

    def validate(self) -> None:
        """Resolve acks/idempotence/compression/serializers and check the limits."""
        super().validate()
        acks = {"all": -1, "-1": -1, "0": 0, "1": 1}.get(str(self.acks).lower())
        if acks is None:
            raise KafkaConfigurationError(f"acks={self.acks!r} must be 0, 1 or 'all' (-1)")
        self.required_acks = acks
        for name in ("linger_ms", "batch_size", "max_request_size", "buffer_memory", "max_block_ms",
                     "max_in_flight_requests_per_connection", "retries", "delivery_timeout_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise KafkaConfigurationError(f"{name}={value!r} must be a non-negative integer")
        if self.batch_size < 1 or self.max_in_flight_requests_per_connection < 1:
            raise KafkaConfigurationError("batch_size and max_in_flight_requests_per_connection must be at least 1")
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            raise KafkaConfigurationError(
                f"delivery_timeout_ms={self.delivery_timeout_ms} must be at least linger_ms + request_timeout_ms"
                f" = {self.linger_ms + self.request_timeout_ms}"
            )
        compatible = acks == -1 and self.retries > 0 and self.max_in_flight_requests_per_connection <= 5
        if self.enable_idempotence is None:
            self.idempotent = compatible
        elif self.enable_idempotence and not compatible:
            raise KafkaConfigurationError(
                "enable_idempotence=True needs acks='all', retries > 0 and max_in_flight_requests_per_connection <= 5"
            )
        else:
            self.idempotent = bool(self.enable_idempotence)
        self.compression_codec = compression_codec(self.compression_type)
        self.key_ser = as_serializer(self.key_serializer, "key_serializer")
        self.value_ser = as_serializer(self.value_serializer, "value_serializer")


@dataclass
class ConsumerConfig(CommonConfig):
    """Consumer settings (Kafka's consumer configs, snake_case)."""

    group_id: str | None = None
    auto_offset_reset: str = "latest"
    fetch_max_wait_ms: int = 500
    fetch_min_bytes: int = 1
    fetch_max_bytes: int = 52_428_800
    max_partition_fetch_bytes: int = 1_048_576
    max_poll_records: int = 500
    consumer_timeout_ms: float = float("inf")
    check_crcs: bool = True  # Kafka's check.crcs: verify every fetched batch's CRC-32C
    key_deserializer: Any = None
    value_deserializer: Any = None
    enable_auto_commit: bool = False

    key_de: Deserializer = field(init=False, repr=False, default=None)  # type: ignore[assignment]
    value_de: Deserializer = field(init=False, repr=False, default=None)  # type: ignore[assignment]

    def validate(self) -> None:
        """Check the values and resolve the deserializers."""
        super().validate()
        if self.group_id is not None:
            raise KafkaConfigurationError(
                f"group_id={self.group_id!r}: consumer groups are not supported yet; use assign()"
                " or subscribe() without a group_id"
            )
        if self.auto_offset_reset not in ("earliest", "latest", "none"):
            raise KafkaConfigurationError(
                f"auto_offset_reset={self.auto_offset_reset!r} must be 'earliest', 'latest' or 'none'"
            )
        for name in ("fetch_max_wait_ms", "fetch_min_bytes", "fetch_max_bytes", "max_partition_fetch_bytes",
                     "max_poll_records"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise KafkaConfigurationError(f"{name}={value!r} must be a non-negative integer")
        if self.max_poll_records < 1:
            raise KafkaConfigurationError("max_poll_records must be at least 1")
        self.key_de = as_deserializer(self.key_deserializer, "key_deserializer")
        self.value_de = as_deserializer(self.value_deserializer, "value_deserializer")


@dataclass
class AdminConfig(CommonConfig):
    """AdminClient settings."""


def compression_codec(name: str | None) -> int:
    """RecordBatch attribute bits for a compression name; raises when unknown or when
    the codec's library is not installed."""
    from aiokafka import codec

    lowered = (name or "none").lower()
    table = {
        "none": (0, lambda: True),
        "gzip": (1, codec.has_gzip),
        "snappy": (2, codec.has_snappy),
        "lz4": (3, codec.has_lz4),
        "zstd": (4, codec.has_zstd),
    }
    if lowered not in table:
        raise KafkaConfigurationError(f"compression_type={name!r} must be one of {', '.join(COMPRESSION_TYPES)}")
    bits, available = table[lowered]
    if not available():
        raise KafkaConfigurationError(
            f"compression_type={lowered!r} needs the 'cramjam' package (pip install cramjam); gzip works without it"
        )
    return bits


def build_config(cls: type[C], config: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> C:
    """One validated config from a dotted-name dict and/or keyword arguments."""
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    for source in (config or {}, kwargs):
        for key, value in source.items():
            name = key.replace(".", "_").replace("-", "_")
            if name not in names:
                raise KafkaConfigurationError(f"unknown {cls.__name__} setting {key!r}")
            values[name] = value
    if "bootstrap_servers" not in values:
        raise KafkaConfigurationError("bootstrap_servers is required (a list or a comma-separated string)")
    try:
        built = cls(**values)
    except TypeError as exc:  # pragma: no cover - names are checked above
        raise KafkaConfigurationError(str(exc)) from exc
    built.validate()
    return built
