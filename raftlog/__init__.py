"""raftlog: a Kafka-style distributed commit log coordinated by Raft.

The client SDK is re-exported here, so applications write::

    from raftlog import Producer, Consumer, AdminClient, TopicPartition, NewTopic

(and ``from raftlog.aio import AIOProducer, AIOConsumer, AIOAdminClient``). The
names load lazily: importing ``raftlog.raft`` or ``raftlog.records`` does not pull
in the client (gRPC channels, serializers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raftlog.client import *  # noqa: F403

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    client = importlib.import_module("raftlog.client")
    if name in globals():  # a submodule the import just bound (``raftlog.client``)
        return globals()[name]
    if name in client.__all__:
        value = getattr(client, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'raftlog' has no attribute {name!r}")


def __dir__() -> list[str]:
    client = importlib.import_module("raftlog.client")
    return sorted(set(globals()) | set(client.__all__))
