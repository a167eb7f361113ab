"""Serializers and deserializers for keys and values.

A producer's ``key_serializer``/``value_serializer`` is a :class:`Serializer`, or
any callable ``f(obj) -> bytes | None`` (kafka-python style); a consumer's
``key_deserializer``/``value_deserializer`` likewise. Bundled: bytes, str (UTF-8 by
default), JSON and protobuf messages. Without one, keys and values must already be
bytes (or None). A failure becomes a :class:`SerializationError` naming the topic,
whether it was the key or the value, the serializer and the cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from google.protobuf.message import DecodeError, Message

from raftlog.client.errors import KafkaConfigurationError, SerializationError

M = TypeVar("M", bound=Message)


class Serializer:
    """Turns an application object into the bytes of a key or value."""

    def serialize(self, topic: str, data: Any) -> bytes | None:
        """The bytes for ``data`` (None stays None: a null key or a tombstone value)."""
        raise NotImplementedError

    def __call__(self, topic: str, data: Any) -> bytes | None:
        """Same as :meth:`serialize`."""
        return self.serialize(topic, data)

    def __repr__(self) -> str:
        return type(self).__name__


class Deserializer:
    """Turns the bytes of a key or value back into an application object."""

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        """The object for ``data`` (None stays None)."""
        raise NotImplementedError

    def __call__(self, topic: str, data: bytes | None) -> Any:
        """Same as :meth:`deserialize`."""
        return self.deserialize(topic, data)

    def __repr__(self) -> str:
        return type(self).__name__


class BytesSerializer(Serializer):
    """bytes, bytearray and memoryview pass through; anything else is an error."""

    def serialize(self, topic: str, data: Any) -> bytes | None:
        """``bytes(data)`` for bytes-like data; raises TypeError otherwise."""
        if data is None or type(data) is bytes:
            return data  # type: ignore[no-any-return,unused-ignore]
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data)
        raise TypeError(
            f"expected bytes, got {type(data).__name__} (set a key_serializer/value_serializer,"
            " e.g. StringSerializer() or JsonSerializer())"
        )


class BytesDeserializer(Deserializer):
    """Returns the bytes as they are."""

    def deserialize(self, topic: str, data: bytes | None) -> bytes | None:
        """``data`` unchanged."""
        return data


class StringSerializer(Serializer):
    """str -> bytes in ``encoding`` (UTF-8 by default)."""

    def __init__(self, encoding: str = "utf-8") -> None:
        self.encoding = encoding

    def serialize(self, topic: str, data: Any) -> bytes | None:
        """``data.encode(encoding)``; raises TypeError for a non-str."""
        if data is None:
            return None
        if not isinstance(data, str):
            raise TypeError(f"expected str, got {type(data).__name__}")
        return data.encode(self.encoding)

    def __repr__(self) -> str:
        return f"StringSerializer({self.encoding!r})"


class StringDeserializer(Deserializer):
    """bytes -> str in ``encoding`` (UTF-8 by default)."""

    def __init__(self, encoding: str = "utf-8") -> None:
        self.encoding = encoding

    def deserialize(self, topic: str, data: bytes | None) -> str | None:
        """``data.decode(encoding)``."""
        return None if data is None else data.decode(self.encoding)

    def __repr__(self) -> str:
        return f"StringDeserializer({self.encoding!r})"


class JsonSerializer(Serializer):
    """Any JSON-able object -> compact UTF-8 JSON. ``json.dumps`` keyword arguments
    (``default=``, ``sort_keys=``...) are passed through."""

    def __init__(self, **dumps_kwargs: Any) -> None:
        self.dumps_kwargs: dict[str, Any] = {"separators": (",", ":"), "allow_nan": False, **dumps_kwargs}

    def serialize(self, topic: str, data: Any) -> bytes | None:
        """``json.dumps(data).encode()``; None is a null record, not ``b"null"``."""
        if data is None:
            return None
        return json.dumps(data, **self.dumps_kwargs).encode("utf-8")


class JsonDeserializer(Deserializer):
    """UTF-8 JSON -> object (``json.loads`` keyword arguments are passed through)."""

    def __init__(self, **loads_kwargs: Any) -> None:
        self.loads_kwargs = loads_kwargs

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        """``json.loads(data)``."""
        return None if data is None else json.loads(data, **self.loads_kwargs)


class ProtobufSerializer(Serializer):
    """A protobuf message -> its wire bytes. With ``message_type`` given, only that
    type is accepted (a message of another type is an error, not silently sent)."""

    def __init__(self, message_type: type[Message] | None = None) -> None:
        self.message_type = message_type

    def serialize(self, topic: str, data: Any) -> bytes | None:
        """``data.SerializeToString()``; raises TypeError for a non-message (or one of the wrong type)."""
        if data is None:
            return None
        if not isinstance(data, Message):
            raise TypeError(f"expected a protobuf message, got {type(data).__name__}")
        if self.message_type is not None and not isinstance(data, self.message_type):
            raise TypeError(f"expected {self.message_type.DESCRIPTOR.full_name}, got {data.DESCRIPTOR.full_name}")
        return data.SerializeToString()

    def __repr__(self) -> str:
        name = self.message_type.DESCRIPTOR.full_name if self.message_type is not None else "any"
        return f"ProtobufSerializer({name})"


class ProtobufDeserializer(Deserializer, Generic[M]):
    """Wire bytes -> a ``message_type`` message."""

    def __init__(self, message_type: type[M]) -> None:
        self.message_type = message_type

    def deserialize(self, topic: str, data: bytes | None) -> M | None:
        """``message_type.FromString(data)``; raises DecodeError for bytes that are not one."""
        if data is None:
            return None
        message = self.message_type()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise ValueError(f"not a valid {self.message_type.DESCRIPTOR.full_name}: {exc}") from exc
        return message

    def __repr__(self) -> str:
        return f"ProtobufDeserializer({self.message_type.DESCRIPTOR.full_name})"


class _CallableSerializer(Serializer):
    def __init__(self, fn: Callable[[Any], bytes | None]) -> None:
        self.fn = fn

    def serialize(self, topic: str, data: Any) -> bytes | None:
        """``fn(data)``, checked to be bytes or None."""
        out = self.fn(data)
        if out is not None and not isinstance(out, (bytes, bytearray, memoryview)):
            raise TypeError(f"{self!r} returned {type(out).__name__}, not bytes")
        return bytes(out) if out is not None and type(out) is not bytes else out

    def __repr__(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


class _CallableDeserializer(Deserializer):
    def __init__(self, fn: Callable[[bytes | None], Any]) -> None:
        self.fn = fn

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        """``fn(data)``."""
        return self.fn(data)

    def __repr__(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


def as_serializer(value: Any, setting: str) -> Serializer:
    """A Serializer from a setting: None (bytes), a Serializer, or a callable obj -> bytes."""
    if value is None:
        return BytesSerializer()
    if isinstance(value, Serializer):
        return value
    if callable(value):
        return _CallableSerializer(value)
    raise KafkaConfigurationError(f"{setting}={value!r} is neither a Serializer nor a callable")


def as_deserializer(value: Any, setting: str) -> Deserializer:
    """A Deserializer from a setting: None (bytes), a Deserializer, or a callable bytes -> obj."""
    if value is None:
        return BytesDeserializer()
    if isinstance(value, Deserializer):
        return value
    if callable(value):
        return _CallableDeserializer(value)
    raise KafkaConfigurationError(f"{setting}={value!r} is neither a Deserializer nor a callable")


def serialize(serializer: Serializer, topic: str, data: Any, field_name: str) -> bytes | None:
    """Run ``serializer`` and turn any failure into a SerializationError naming the cause."""
    try:
        return serializer.serialize(topic, data)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"cannot serialize the {field_name} for topic {topic!r} with {serializer!r}:"
            f" {type(exc).__name__}: {exc}",
            cause=exc,
        ) from exc


def deserialize(deserializer: Deserializer, topic: str, partition: int, offset: int, data: bytes | None,
                field_name: str) -> Any:
    """Run ``deserializer``; a failure becomes a SerializationError naming the record."""
    try:
        return deserializer.deserialize(topic, data)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(
            f"cannot deserialize the {field_name} of {topic}-{partition} at offset {offset} with"
            f" {deserializer!r}: {type(exc).__name__}: {exc}",
            cause=exc,
        ) from exc
