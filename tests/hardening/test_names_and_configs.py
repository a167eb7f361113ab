"""Names and configs are validated with full-match rules and ASCII digits, and no
error message repeats unbounded client input (hardening findings)."""

from __future__ import annotations

import pytest

from raftlog.errors import ErrorCode, KafkaError
from raftlog.node.controller.replication_control import validate_topic_name
from raftlog.node.metadata.image import MetadataImage
from raftlog.topic_config import ECHO_LIMIT, validate_configs
from tests.unit import controller_ops


@pytest.mark.parametrize("name", ["t1\n", "t1\r", "\nt1", "t 1", "tópico", "t1\x00"])
def test_topic_names_must_match_whole(name: str) -> None:
    # "t1\n" was accepted: the regex's "$" matches before a trailing newline.
    with pytest.raises(KafkaError) as err:
        validate_topic_name(name)
    assert err.value.code == ErrorCode.INVALID_TOPIC


@pytest.mark.parametrize("value", [" 5", "5 ", "1_000", "\u0665", "\uff15", "+5", "5.0", ""])
def test_integer_configs_take_ascii_digits_only(value: str) -> None:
    # " 5", "1_000" and non-ASCII digits were stored as given: int() accepts them.
    with pytest.raises(KafkaError) as err:
        validate_configs({"retention.ms": value})
    assert err.value.code == ErrorCode.INVALID_CONFIG


def test_good_values_still_pass() -> None:
    assert validate_configs({"retention.ms": "-1", "min.insync.replicas": "2"}) == {
        "retention.ms": "-1", "min.insync.replicas": "2"}
    validate_topic_name("orders.v1_x-2")


def test_errors_never_echo_unbounded_input() -> None:
    # A 10 MB name echoed in an error overflowed the gRPC trailers.
    huge = "x" * 10_000_000
    for call in (
        lambda: validate_configs({huge: "1"}),
        lambda: validate_configs({"retention.ms": huge}),
        lambda: controller_ops.delete_topic(MetadataImage(), huge),
    ):
        with pytest.raises(KafkaError) as err:
            call()
        assert len(err.value.info.message) < ECHO_LIMIT + 400, len(err.value.info.message)
