"""QuorumController: the active controller's runtime (Kafka's name and design).

Every write runs the same way, one at a time (Kafka's single-threaded event queue,
here a lock on the event loop):

1. read the controller state: the *latest* image, i.e. the committed image plus
   every record this leader appended since;
2. run a pure operation of one of the *ControlManagers on it, giving a
   ``ControllerResult(records, response)``;
3. append the records to the Raft log and apply them to the latest image at once,
   so the next operation sees them even if this one's caller times out before they
   commit (Kafka applies records at append time, keeping a snapshot at the committed
   offset to revert to);
4. answer once the records are committed.

When the term changes (leadership lost, even if regained), the latest image falls
back to the committed image: records appended in a lost term may be overwritten.
A new leader decides only once it has applied an entry of its own term, so its
committed image holds every committed record.

Reads run on the committed image (what clients were acknowledged), on the leader
once it is ready. The runtime answers only on the leader: forwarding is the gRPC
layer's job (node/api/grpc/forwarding.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

from raftlog.node.config import NodeConfig
from raftlog.node.controller.cluster_control import ClusterControlManager
from raftlog.node.controller.feature_control import FeatureControlManager
from raftlog.node.controller.producer_id_control import ProducerIdControlManager
from raftlog.node.controller.replication_control import (
    ReplicationControlManager,
    existing_topic,
    new_topic_id,
    topic_description,
)
from raftlog.node.controller.result import ControllerResult, Record
from raftlog.node.logging import get_logger
from raftlog.node.metadata.image import MetadataDelta, MetadataImage
from raftlog.node.controller.errors import controller_error
from raftlog.node.metadata.raft_driver import MetadataRaftDriver
from raftlog.node.quorum.errors import QuorumError
from raftlog.errors import ErrorCode, KafkaError
from raftlog.v1 import admin_pb2, controller_pb2, metadata_pb2

R = TypeVar("R")

NO_OP = Record(no_op=metadata_pb2.NoOpRecord())


class QuorumController:
    """Runs controller operations on the Raft leader; see the module docstring."""

    def __init__(
        self,
        config: NodeConfig,
        driver: MetadataRaftDriver,
        *,
        replication: ReplicationControlManager | None = None,
        producer_ids: ProducerIdControlManager | None = None,
    ) -> None:
        self.config = config
        self.driver = driver
        self.replication = replication if replication is not None else ReplicationControlManager()
        self.configuration = self.replication.configs
        self.cluster = ClusterControlManager(self.replication)
        self.producer_ids = producer_ids if producer_ids is not None else ProducerIdControlManager()
        self.features = FeatureControlManager()
        self.logger = get_logger("controller", config.node_id)
        self._lock = asyncio.Lock()
        self._latest: MetadataImage | None = None
        self._latest_term = 0
        self._latest_failures = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._tasks = [
            asyncio.get_running_loop().create_task(self._idle_no_ops(), name=f"no-op-{self.config.node_id}")
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2.0)
        self._tasks = []

    # ------------------------------------------------------------------ state
    def latest_image(self) -> MetadataImage:
        """The committed image plus every record this leader appended since. Falls back
        to the committed image (reverting the uncommitted records) when the term
        changed or an append failed (what was applied at append may not be in the
        log), and once everything appended is committed."""
        committed = self.driver.image
        if (
            self._latest is None
            or (self._latest_term, self._latest_failures) != (self.driver.term, self.driver.append_failures)
            or self._latest.offset <= committed.offset
        ):
            self._latest = committed
            self._latest_term, self._latest_failures = self.driver.term, self.driver.append_failures
        return self._latest

    async def _ready(self, deadline: float) -> None:
        """Return once this node is the leader and has applied an entry of its term."""
        if not self.driver.is_leader:
            raise controller_error(self.driver.not_leader("this node is not the active controller"))
        ready = await self.driver.wait_until(
            lambda: self.driver.decisions_ready or not self.driver.is_leader,
            max(0.0, deadline - time.monotonic()),
        )
        if not self.driver.is_leader:
            raise controller_error(self.driver.not_leader("this node is not the active controller"))
        if not ready:
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, "the new controller is still loading metadata")

    # ------------------------------------------------------------------ the runtime
    async def write(
        self, operation: Callable[[MetadataImage], ControllerResult[R]], timeout_s: float
    ) -> R:
        """Run ``operation`` on the latest state, append and apply its records, and
        return its response once they are committed. Raises the operation's
        KafkaError, NOT_CONTROLLER, or REQUEST_TIMED_OUT (the records may still
        commit; the next operation sees them either way)."""
        deadline = time.monotonic() + timeout_s
        async with self._lock:
            await self._ready(deadline)
            base = self.latest_image()
            result = operation(base)
            if result.records:
                try:
                    appended, committed = self.driver.append(
                        [r.SerializeToString(deterministic=True) for r in result.records]
                    )
                except QuorumError as exc:
                    raise controller_error(exc) from None
                if appended.term != self._latest_term:
                    # Leadership changed between the decision and the append: the
                    # decision was made on a state this term never had.
                    self._latest = None
                    raise controller_error(self.driver.not_leader("leadership changed during the decision"))
                delta = MetadataDelta(base)
                for offset, record in enumerate(result.records, start=appended.first_index):
                    delta.replay(record, offset=offset, epoch=appended.term)
                self._latest = delta.apply()
        if not result.records:
            # Nothing to write, but the response may rest on records still in flight:
            # answer once everything appended so far is committed (as Kafka does).
            await self._wait_applied(base.offset, deadline, timeout_s)
            return result.response
        try:
            await asyncio.wait_for(asyncio.shield(committed), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise KafkaError(
                ErrorCode.REQUEST_TIMED_OUT,
                f"records not committed within {timeout_s * 1000:.0f} ms (they may still commit)",
            ) from None
        except QuorumError as exc:  # leadership lost before they committed, or stopping
            raise controller_error(exc) from None
        return result.response

    async def _wait_applied(self, offset: int, deadline: float, timeout_s: float) -> None:
        if self.driver.applied >= offset:
            return
        term = self.driver.term
        done = await self.driver.wait_until(
            lambda: self.driver.applied >= offset or self.driver.term != term,
            max(0.0, deadline - time.monotonic()),
        )
        if self.driver.term != term:
            raise controller_error(self.driver.not_leader("leadership changed before the records committed"))
        if not done:
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, f"records not committed within {timeout_s * 1000:.0f} ms")

    async def read(self, operation: Callable[[MetadataImage], R], timeout_s: float) -> R:
        """Run a read-only ``operation`` on the leader's committed image."""
        await self._ready(time.monotonic() + timeout_s)
        return operation(self.driver.image)

    # ------------------------------------------------------------------ operations
    def check_cluster(self, cluster_id: str) -> None:
        if cluster_id != self.config.cluster_id:
            raise KafkaError(
                ErrorCode.INCONSISTENT_CLUSTER_ID,
                f"cluster id {cluster_id!r} does not match this cluster's {self.config.cluster_id!r}",
            )

    async def register_broker(
        self, request: controller_pb2.RegisterBrokerRequest, timeout_s: float
    ) -> controller_pb2.RegisterBrokerResponse:
        self.check_cluster(request.cluster_id)
        response = await self.write(
            lambda image: self.cluster.register_broker(image, request, self.driver.next_index), timeout_s
        )
        self.logger.info("broker registered", broker_id=request.broker_id,
                         incarnation_id=request.incarnation_id, broker_epoch=response.broker_epoch)
        return response

    async def fence_broker(self, broker_id: int, broker_epoch: int, timeout_s: float) -> bool:
        """Fence this incarnation of a broker; True when that changed anything."""
        return await self.write(lambda image: self.cluster.fence_broker(image, broker_id, broker_epoch), timeout_s)

    async def unfence_broker(self, broker_id: int, broker_epoch: int, timeout_s: float) -> bool:
        return await self.write(lambda image: self.cluster.unfence_broker(image, broker_id, broker_epoch), timeout_s)

    async def alter_partition(
        self, request: controller_pb2.AlterPartitionRequest, timeout_s: float
    ) -> controller_pb2.AlterPartitionResponse:
        return await self.write(lambda image: self.replication.alter_partition(image, request), timeout_s)

    async def allocate_producer_ids(
        self, request: controller_pb2.AllocateProducerIdsRequest, timeout_s: float
    ) -> controller_pb2.AllocateProducerIdsResponse:
        return await self.write(lambda image: self.producer_ids.allocate_producer_ids(image, request), timeout_s)

    async def create_topic(
        self, request: admin_pb2.CreateTopicRequest, timeout_s: float
    ) -> admin_pb2.CreateTopicResponse:
        topic_id = new_topic_id()
        return await self.write(lambda image: self.replication.create_topic(image, request, topic_id), timeout_s)

    async def delete_topic(
        self, request: admin_pb2.DeleteTopicRequest, timeout_s: float
    ) -> admin_pb2.DeleteTopicResponse:
        return await self.write(lambda image: self.replication.delete_topic(image, request.name), timeout_s)

    async def alter_configs(
        self, request: admin_pb2.AlterConfigsRequest, timeout_s: float
    ) -> admin_pb2.AlterConfigsResponse:
        return await self.write(lambda image: self.configuration.alter_configs(image, request), timeout_s)

    async def update_features(
        self, request: admin_pb2.UpdateFeaturesRequest, timeout_s: float
    ) -> admin_pb2.UpdateFeaturesResponse:
        return await self.write(
            lambda image: self.features.update_features(image, request, self.driver.next_index, self.driver.term),
            timeout_s,
        )

    async def list_topics(self, request: admin_pb2.ListTopicsRequest, timeout_s: float) -> admin_pb2.ListTopicsResponse:
        return await self.read(lambda image: admin_pb2.ListTopicsResponse(names=sorted(image.topic_ids)), timeout_s)

    async def describe_topic(
        self, request: admin_pb2.DescribeTopicRequest, timeout_s: float
    ) -> admin_pb2.TopicDescription:
        return await self.read(
            lambda image: topic_description(image, existing_topic(image, request.name)), timeout_s
        )

    # ------------------------------------------------------------------ idle no-ops
    async def _idle_no_ops(self) -> None:
        """KIP-835 ``metadata.max.idle.interval.ms``: a leader that wrote nothing for
        ``no_op_interval_ms`` writes a NoOpRecord, so the high watermark keeps moving
        and liveness of the quorum is visible."""
        interval = self.config.no_op_interval_ms / 1000
        check = min(interval / 4, 0.1)
        while not self._stopping:
            await asyncio.sleep(check)
            if not self.driver.decisions_ready or not self.driver.running:
                continue
            if time.monotonic() - self.driver.last_proposal_at < interval:
                continue
            try:
                await self.write(lambda image: ControllerResult.of([NO_OP], None), interval * 2)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                self.logger.debug("idle no-op not committed", error=str(exc))
