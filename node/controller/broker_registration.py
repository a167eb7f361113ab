"""BrokerRegistrationManager: this node's registration with the active controller.

At start every node registers itself (a new incarnation id per process) through
the active controller, wherever it is, retrying with backoff until the
registration is committed; the broker epoch it gets back is the offset of its
registration record. It is the registration half of Kafka's
BrokerLifecycleManager (node/broker's heartbeater is the other half).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from raftlog.node.config import NodeConfig
from raftlog.node.logging import get_logger
from raftlog.errors import KafkaError
from raftlog.v1 import controller_pb2, metadata_pb2

#: Sends a RegisterBroker to the active controller (here or forwarded).
RegisterCall = Callable[[controller_pb2.RegisterBrokerRequest, float], Awaitable[controller_pb2.RegisterBrokerResponse]]


class BrokerRegistrationManager:
    """Registers this node; ``registered`` is set and ``broker_epoch`` known once done."""

    def __init__(self, config: NodeConfig, register: RegisterCall) -> None:
        self.config = config
        self._register = register
        self.incarnation_id = str(uuid.uuid4())
        self.broker_epoch: int | None = None
        self.registered = asyncio.Event()
        self.logger = get_logger("registration", config.node_id)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._register_self(), name=f"register-{self.config.node_id}"
        )

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            # A cancel that lands inside a gRPC call may come back as an RPC error;
            # the loop then sees _stopping and returns.
            await asyncio.wait([self._task], timeout=2.0)
            self._task = None

    def own_registration(self) -> controller_pb2.RegisterBrokerRequest:
        return controller_pb2.RegisterBrokerRequest(
            cluster_id=self.config.cluster_id,
            broker_id=self.config.node_id,
            incarnation_id=self.incarnation_id,
            # Every advertised listener, the inter-broker one first (what peers dial).
            endpoints=[
                metadata_pb2.Endpoint(name=listener.name, host=listener.host, port=listener.port)
                for listener in self.config.advertised_listeners
            ],
        )

    async def _register_self(self) -> None:
        request = self.own_registration()
        backoff = 0.1
        attempts = 0
        timeout = self.config.request_timeout_ms / 1000
        while not self._stopping:
            attempts += 1
            try:
                response = await self._register(request, timeout)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                level = "info" if exc.retriable and attempts < 20 else "warning"
                getattr(self.logger, level)(
                    "self-registration not done yet; retrying",
                    error=str(exc), attempts=attempts, retry_in_ms=int(backoff * 1000),
                )
            except Exception as exc:  # noqa: BLE001 - keep retrying, never crash the node
                self.logger.warning("self-registration failed; retrying", error=repr(exc), attempts=attempts)
            else:
                self.broker_epoch = response.broker_epoch
                self.registered.set()
                self.logger.info("registered with the active controller",
                                 broker_epoch=response.broker_epoch, incarnation_id=self.incarnation_id)
                return
            if self._stopping:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def register_again(self) -> None:
        """Register once more (the controller no longer knows our broker epoch)."""
        self.registered.clear()
        await self._register_self()
