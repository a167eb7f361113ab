"""The active controller's duties, and every node's registration with it.

- ``register_broker``: the leader's side of ``Controller.RegisterBroker``: decide
  with ``QuorumController`` (pure), propose the records, answer once committed.
  The broker epoch is the offset of the committed registration record.
- Idle no-ops (KIP-835 ``metadata.max.idle.interval.ms``): a leader that proposed
  nothing for ``no_op_interval_ms`` proposes a ``NoOpRecord``, so the high
  watermark keeps moving and liveness of the quorum is visible.
- Self-registration: at start every node registers itself (a new incarnation id
  per process) through the leader, retrying with backoff until it is committed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from raftlog.node.config import NodeConfig
from raftlog.node.controller.controller import QuorumController
from raftlog.node.metadata.image import MetadataDelta, MetadataImage
from raftlog.node.logging import get_logger
from raftlog.node.quorum.driver import RaftDriver
from raftlog.node.api.grpc.forwarding import LeaderRouter
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import controller_pb2, controller_pb2_grpc, metadata_pb2

class ActiveController:
    def __init__(
        self,
        config: NodeConfig,
        driver: RaftDriver,
        router: LeaderRouter,
        decisions: QuorumController | None = None,
    ) -> None:
        self.config = config
        self.driver = driver
        self.router = router
        self.decisions = decisions if decisions is not None else QuorumController()
        self.incarnation_id = str(uuid.uuid4())
        self.broker_epoch: int | None = None
        self.registered = asyncio.Event()
        self._log = get_logger("controller", config.node_id)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._decide_lock = asyncio.Lock()
        self._latest: MetadataImage | None = None
        self._latest_term = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._idle_no_ops(), name=f"no-op-{self.config.node_id}"),
            loop.create_task(self._register_self(), name=f"register-{self.config.node_id}"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # A cancel that lands inside a gRPC call may come back as an RPC error;
            # the loops then see _stopping and return.
            await asyncio.wait(self._tasks, timeout=2.0)
        self._tasks = []

    # ------------------------------------------------------------------ RegisterBroker
    def check_cluster(self, cluster_id: str) -> None:
        if cluster_id != self.config.cluster_id:
            raise KafkaError(
                ErrorCode.INCONSISTENT_CLUSTER_ID,
                f"cluster id {cluster_id!r} does not match this cluster's {self.config.cluster_id!r}",
            )

    def latest_image(self) -> MetadataImage:
        """The image the next decision is made on: the committed image plus every record
        this leader appended since (Kafka applies records to controller state at append
        time). Falls back to the committed image, which reverts the uncommitted ones,
        when the term changed (leadership was lost, whatever was appended may be gone)
        or once everything appended is committed."""
        committed = self.driver.image
        if (
            self._latest is None
            or self._latest_term != self.driver.term
            or self._latest.offset <= committed.offset
        ):
            self._latest, self._latest_term = committed, self.driver.term
        return self._latest

    async def decide(
        self, decide: Callable[[MetadataImage], list[metadata_pb2.MetadataRecord]], timeout_s: float
    ) -> tuple[MetadataImage, int]:
        """On the leader: run ``decide`` against the latest image, append its records,
        apply them to the latest image at once, and wait until they are committed;
        returns (the latest image with them applied, offset of the first record).

        One decision at a time, each seeing every earlier one, even one whose caller
        timed out before it committed: two concurrent "create topic t" cannot both
        pass validation, and a fence cannot undo an ISR shrink still in flight. A new
        leader decides only once it has applied an entry of its own term, so its image
        holds every committed record (Raft's leader completeness reaches the state
        machine)."""
        if not self.driver.is_leader:
            raise self.driver.not_controller()
        deadline = time.monotonic() + timeout_s
        async with self._decide_lock:
            ready = await self.driver.wait_until(
                lambda: self.driver.decisions_ready or not self.driver.is_leader,
                max(0.0, deadline - time.monotonic()),
            )
            if not self.driver.is_leader:
                raise self.driver.not_controller()
            if not ready:
                raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, "the new controller is still loading metadata")
            base = self.latest_image()
            records = decide(base)
            if not records:
                return base, 0
            appended, committed = await self.driver.append(
                [r.SerializeToString(deterministic=True) for r in records]
            )
            if appended.term != self._latest_term:
                # Leadership changed between the decision and the append: the decision
                # was made on a state this term never had, so it must not be applied.
                self._latest = None
                raise self.driver.not_controller("leadership changed during the decision")
            delta = MetadataDelta(base)
            for offset, record in enumerate(records, start=appended.first_index):
                delta.replay(record, offset=offset, epoch=appended.term)
            latest = self._latest = delta.apply()
        try:
            await asyncio.wait_for(asyncio.shield(committed), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise KafkaError(
                ErrorCode.REQUEST_TIMED_OUT,
                f"records not committed within {timeout_s * 1000:.0f} ms (they may still commit)",
            ) from None
        return latest, appended.first_index

    async def register_broker_local(
        self, request: controller_pb2.RegisterBrokerRequest, timeout_s: float
    ) -> controller_pb2.RegisterBrokerResponse:
        """The leader's handling: decide, propose, wait for commit."""
        self.check_cluster(request.cluster_id)
        records: list[metadata_pb2.MetadataRecord] = []

        def decide(image: MetadataImage) -> list[metadata_pb2.MetadataRecord]:
            records[:] = self.decisions.register_broker(image, request)
            return records

        image, first = await self.decide(decide, timeout_s)
        current = image.brokers.get(request.broker_id)
        if current is None or current.incarnation_id != request.incarnation_id:
            raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, "registration was not applied")
        if records:
            self._log.info("broker registered", broker_id=request.broker_id,
                           incarnation_id=request.incarnation_id, broker_epoch=current.broker_epoch)
        return controller_pb2.RegisterBrokerResponse(broker_epoch=current.broker_epoch)

    async def register_broker(
        self, request: controller_pb2.RegisterBrokerRequest, context: object, timeout_s: float
    ) -> controller_pb2.RegisterBrokerResponse:
        """Answer on the leader, or forward there (``context``: the gRPC call, or None)."""
        self.check_cluster(request.cluster_id)

        async def remote(channel: object, timeout: float, metadata: object) -> controller_pb2.RegisterBrokerResponse:
            stub = controller_pb2_grpc.ControllerStub(channel)
            response: controller_pb2.RegisterBrokerResponse = await stub.RegisterBroker(
                request, timeout=timeout, metadata=metadata
            )
            return response

        async def local(timeout: float) -> controller_pb2.RegisterBrokerResponse:
            return await self.register_broker_local(request, timeout)

        return await self.router.route(context, timeout_s, local, remote)

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
                response = await self.register_broker(request, None, timeout)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                level = "info" if exc.retriable and attempts < 20 else "warning"
                getattr(self._log, level)(
                    "self-registration not done yet; retrying",
                    error=str(exc), attempts=attempts, retry_in_ms=int(backoff * 1000),
                )
            except Exception as exc:  # noqa: BLE001 - keep retrying, never crash the node
                self._log.warning("self-registration failed; retrying", error=repr(exc),
                                  attempts=attempts)
            else:
                self.broker_epoch = response.broker_epoch
                self.registered.set()
                self._log.info("registered with the active controller",
                               broker_epoch=response.broker_epoch,
                               incarnation_id=self.incarnation_id)
                return
            if self._stopping:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    async def register_again(self) -> None:
        """Register once more (the controller no longer knows our broker epoch)."""
        self.registered.clear()
        await self._register_self()

    # ------------------------------------------------------------------ idle no-ops
    async def _idle_no_ops(self) -> None:
        interval = self.config.no_op_interval_ms / 1000
        record = self.decisions.no_op_record().SerializeToString()
        check = min(interval / 4, 0.1)
        while not self._stopping:
            await asyncio.sleep(check)
            if not self.driver.is_leader or not self.driver.running:
                continue
            if time.monotonic() - self.driver.last_proposal_at < interval:
                continue
            try:
                await self.driver.propose([record], interval * 2)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                self._log.debug("idle no-op not committed", error=str(exc))
