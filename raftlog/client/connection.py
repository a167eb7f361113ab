"""One gRPC channel per node, and calls that always end (deadline) with a typed error.

Channels are ``grpc.aio`` channels bound to the client's event loop; a channel is
opened on first use of an address and reused for every request to that node. A
failed call becomes the :class:`~raftlog.client.errors.BrokerResponseError` of the
Kafka error code in its status (a transport failure: NETWORK_EXCEPTION, a deadline:
REQUEST_TIMED_OUT), with a message naming the node and the method.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import grpc
import grpc.aio

from raftlog.client.logs import get_logger
from raftlog.client.errors import from_rpc_error
from raftlog.v1 import admin_pb2_grpc, broker_pb2_grpc

R = TypeVar("R")

logger = get_logger("raftlog.client")


class Connection:
    """A channel to one node and the stubs of the client-facing services."""

    def __init__(self, address: str, max_message_size: int) -> None:
        self.address = address
        self.channel = grpc.aio.insecure_channel(
            address,
            options=[
                ("grpc.max_send_message_length", max_message_size),
                ("grpc.max_receive_message_length", max_message_size),
                # Reconnect fast after a node restarts (the default backoff grows to 120 s).
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
                ("grpc.keepalive_time_ms", 20_000),
                ("grpc.keepalive_timeout_ms", 10_000),
                ("grpc.enable_retries", 0),
            ],
        )
        self.broker = broker_pb2_grpc.BrokerStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    async def close(self) -> None:
        """Close the channel (pending calls are cancelled)."""
        await self.channel.close(grace=None)


class ConnectionPool:
    """The channels of one client, by ``host:port``."""

    def __init__(self, max_message_size: int) -> None:
        self.max_message_size = max_message_size
        self._connections: dict[str, Connection] = {}
        self.closed = False

    def get(self, address: str) -> Connection:
        """The connection to ``address`` (opened on first use)."""
        connection = self._connections.get(address)
        if connection is None:
            connection = Connection(address, self.max_message_size)
            self._connections[address] = connection
        return connection

    async def call(self, address: str, service: str, method: str, request: Any, timeout_s: float) -> Any:
        """``service.method(request)`` on ``address`` with a deadline; raises a
        BrokerResponseError (never a raw grpc.RpcError)."""
        connection = self.get(address)
        stub = connection.broker if service == "broker" else connection.admin
        try:
            return await getattr(stub, method)(request, timeout=max(0.001, timeout_s))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, f"{method} to {address}") from None
        except asyncio.CancelledError:
            raise

    async def close(self) -> None:
        """Close every channel."""
        self.closed = True
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            try:
                await connection.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                logger.debug("closing channel failed", address=connection.address, error=repr(exc))

