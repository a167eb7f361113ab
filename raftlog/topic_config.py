"""Topic configs with Kafka's names, defaults and validation.

Shared by the controller (validates what is set), the broker (reads the effective
values) and clients (describe shows them), so it lives in raftlog, not node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from raftlog.errors import ErrorCode, KafkaError


# ASCII digits only, whole string: int() alone also takes " 5", "1_000" and other
# scripts' digits, which Kafka's Java parser refuses and other tools cannot read.
_INTEGER = re.compile(r"-?[0-9]+")
#: Longest piece of client input an error message repeats (names, values).
ECHO_LIMIT = 64


def echo(value: str) -> str:
    """``value`` quoted for an error message, cut to ``ECHO_LIMIT`` characters: an
    unbounded echo of client input can overflow a response's trailers."""
    if len(value) <= ECHO_LIMIT:
        return repr(value)
    return f"{value[:ECHO_LIMIT]!r}... ({len(value)} characters)"


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not _INTEGER.fullmatch(value):
            raise ValueError("must be a whole number in ASCII digits")
        number = int(value)
        if number < low:
            raise ValueError(f"must be at least {low}")
        return number

    return parse


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"


def _cleanup_policy(value: str) -> str:
    if value != "delete":
        raise ValueError("only 'delete' is supported (compaction is not implemented)")
    return value


# KIP-937 (Kafka 3.6) bounds of a record's CreateTime around the broker's clock; Kafka 4.0
# defaults after.max.ms to one hour (KIP-1030) — a far-future timestamp would otherwise
# hold time-based retention off for good.
DEFAULT_TIMESTAMP_BEFORE_MAX_MS = 9223372036854775807
DEFAULT_TIMESTAMP_AFTER_MAX_MS = 3600000


@dataclass(frozen=True, slots=True)
class ConfigDef:
    name: str
    default: str
    parse: Callable[[str], object]
    doc: str


CONFIG_DEFS: Mapping[str, ConfigDef] = {
    d.name: d
    for d in (
        ConfigDef("cleanup.policy", "delete", _cleanup_policy, "How old data goes: 'delete' (retention)."),
        ConfigDef("retention.ms", "604800000", _int_at_least(-1), "Delete batches older than this; -1: never."),
        ConfigDef("retention.bytes", "-1", _int_at_least(-1), "Keep at most this many bytes per partition; -1: no limit."),
        ConfigDef("max.message.bytes", "1048588", _int_at_least(0), "Largest record batch a partition accepts."),
        ConfigDef(
            "message.timestamp.before.max.ms", str(DEFAULT_TIMESTAMP_BEFORE_MAX_MS), _int_at_least(0),
            "Refuse (INVALID_TIMESTAMP) records whose timestamp is older than this before the broker's clock.",
        ),
        ConfigDef(
            "message.timestamp.after.max.ms", str(DEFAULT_TIMESTAMP_AFTER_MAX_MS), _int_at_least(0),
            "Refuse (INVALID_TIMESTAMP) records whose timestamp is further than this ahead of the broker's clock.",
        ),
        ConfigDef("min.insync.replicas", "1", _int_at_least(1), "ISR size acks=all needs to succeed."),
        ConfigDef(
            "unclean.leader.election.enable", "false", _bool,
            "Allow a leader from outside the ISR (loses acknowledged data; off by default).",
        ),
    )
}


def validate_configs(configs: Mapping[str, str]) -> dict[str, str]:
    """Check names and values; INVALID_CONFIG naming the first bad one."""
    out: dict[str, str] = {}
    for name, value in configs.items():
        definition = CONFIG_DEFS.get(name)
        if definition is None:
            raise KafkaError(
                ErrorCode.INVALID_CONFIG, f"unknown topic config {echo(name)}; known: {', '.join(sorted(CONFIG_DEFS))}"
            )
        try:
            definition.parse(value)
        except ValueError as exc:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"bad value {echo(value)} for {name}: {exc}") from exc
        out[name] = value
    return out


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """The effective configs of one topic (set values over defaults), typed."""

    cleanup_policy: str
    retention_ms: int
    retention_bytes: int
    max_message_bytes: int
    min_insync_replicas: int
    unclean_leader_election_enable: bool
    message_timestamp_before_max_ms: int = DEFAULT_TIMESTAMP_BEFORE_MAX_MS
    message_timestamp_after_max_ms: int = DEFAULT_TIMESTAMP_AFTER_MAX_MS

    @classmethod
    def of(cls, configs: Mapping[str, str]) -> TopicConfig:
        merged = {name: configs.get(name, d.default) for name, d in CONFIG_DEFS.items()}
        return cls(
            cleanup_policy=merged["cleanup.policy"],
            retention_ms=int(merged["retention.ms"]),
            retention_bytes=int(merged["retention.bytes"]),
            max_message_bytes=int(merged["max.message.bytes"]),
            min_insync_replicas=int(merged["min.insync.replicas"]),
            unclean_leader_election_enable=_bool(merged["unclean.leader.election.enable"]),
            message_timestamp_before_max_ms=int(merged["message.timestamp.before.max.ms"]),
            message_timestamp_after_max_ms=int(merged["message.timestamp.after.max.ms"]),
        )


def effective_configs(configs: Mapping[str, str]) -> dict[str, str]:
    """Every config with its value, defaults filled in (what `topic describe` shows)."""
    return {name: configs.get(name, d.default) for name, d in sorted(CONFIG_DEFS.items())}
