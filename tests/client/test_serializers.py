"""Serializers and deserializers, without a cluster."""

from __future__ import annotations

import pytest

from raftlog.client.errors import KafkaConfigurationError, SerializationError
from raftlog.client.serializers import (
    BytesDeserializer,
    BytesSerializer,
    JsonDeserializer,
    JsonSerializer,
    ProtobufDeserializer,
    ProtobufSerializer,
    StringDeserializer,
    StringSerializer,
    as_deserializer,
    as_serializer,
    deserialize,
    serialize,
)
from raftlog.v1 import broker_pb2


def test_bytes() -> None:
    s = BytesSerializer()
    assert s.serialize("t", b"x") == b"x"
    assert s.serialize("t", bytearray(b"y")) == b"y"
    assert s.serialize("t", memoryview(b"z")) == b"z"
    assert s.serialize("t", None) is None
    with pytest.raises(SerializationError) as exc:
        serialize(s, "orders", "text", "value")
    assert "value" in str(exc.value) and "orders" in str(exc.value) and "str" in str(exc.value)
    assert BytesDeserializer().deserialize("t", b"q") == b"q"


def test_string() -> None:
    assert StringSerializer().serialize("t", "héllo") == "héllo".encode()
    assert StringSerializer("latin-1").serialize("t", "é") == b"\xe9"
    assert StringDeserializer().deserialize("t", "héllo".encode()) == "héllo"
    with pytest.raises(SerializationError, match="expected str, got int"):
        serialize(StringSerializer(), "t", 5, "key")
    with pytest.raises(SerializationError, match="offset 9"):
        deserialize(StringDeserializer(), "t", 0, 9, b"\xff\xfe", "value")


def test_json() -> None:
    value = {"a": [1, 2.5, None, True], "b": "x"}
    data = JsonSerializer().serialize("t", value)
    assert data == b'{"a":[1,2.5,null,true],"b":"x"}'
    assert JsonDeserializer().deserialize("t", data) == value
    assert JsonSerializer().serialize("t", None) is None  # a tombstone, not b"null"
    with pytest.raises(SerializationError) as exc:
        serialize(JsonSerializer(), "events", {"s": {1}}, "value")
    assert "JsonSerializer" in str(exc.value) and "set" in str(exc.value)
    assert isinstance(exc.value.cause, TypeError)
    with pytest.raises(SerializationError, match="not JSON compliant"):
        serialize(JsonSerializer(), "t", float("nan"), "value")
    with pytest.raises(SerializationError, match="JSONDecodeError"):
        deserialize(JsonDeserializer(), "t", 0, 0, b"{not json", "value")


def test_protobuf() -> None:
    message = broker_pb2.FetchRequest(topic="a", offset=5)
    data = ProtobufSerializer().serialize("t", message)
    assert ProtobufDeserializer(broker_pb2.FetchRequest).deserialize("t", data) == message
    typed = ProtobufSerializer(broker_pb2.FetchRequest)
    with pytest.raises(SerializationError, match="raftlog.v1.FetchRequest"):
        serialize(typed, "t", broker_pb2.ProduceRequest(), "value")
    with pytest.raises(SerializationError, match="protobuf message"):
        serialize(ProtobufSerializer(), "t", {"a": 1}, "value")
    with pytest.raises(SerializationError, match="not a valid raftlog.v1.FetchRequest"):
        deserialize(ProtobufDeserializer(broker_pb2.FetchRequest), "t", 0, 3, b"\xff\xff\xff", "value")


def test_plain_callables_and_bad_settings() -> None:
    s = as_serializer(lambda v: str(v).encode(), "value_serializer")
    assert s.serialize("t", 42) == b"42"
    bad = as_serializer(lambda v: 42, "value_serializer")
    with pytest.raises(SerializationError, match="not bytes"):
        serialize(bad, "t", 1, "value")
    d = as_deserializer(lambda b: b.decode(), "value_deserializer")
    assert d.deserialize("t", b"x") == "x"
    with pytest.raises(KafkaConfigurationError, match="value_serializer"):
        as_serializer(42, "value_serializer")
