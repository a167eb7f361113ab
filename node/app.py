"""A node process: data dir, storage, Raft driver, gRPC server, controlled shutdown.

``Node`` is the programmatic handle (tests start several in one event loop);
``run_node`` is what ``raftlog node start`` runs: start, wait for SIGTERM/SIGINT,
shut down in a controlled way, return the exit code.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import time
from collections.abc import Callable

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from raftlog.node.broker import BrokerConfig, ReplicaManager, grpc_peer_factory
from raftlog.node.broker.lifecycle import BrokerHeartbeater
from raftlog.node.controller.broker_heartbeat_manager import BrokerHeartbeatManager
from raftlog.node.controller.broker_registration import BrokerRegistrationManager
from raftlog.node.controller.quorum_controller import QuorumController
from raftlog.node.api.grpc.broker import BrokerService
from raftlog.node.api.grpc.replication import ReplicationService
from raftlog.node.config import NodeConfig
from raftlog.node.metadata.loader import MetadataLoader
from raftlog.node.data_dir import DataDir, DataDirError
from raftlog.node.logging import get_logger
from raftlog.node.metadata.raft_driver import MetadataRaftDriver
from raftlog.node.api.grpc.forwarding import LeaderRouter
from raftlog.node.api.grpc.admin import AdminService
from raftlog.node.api.grpc.controller import ControllerService, NodeControllerClient
from raftlog.node.api.grpc.quorum import QuorumService
from raftlog.node.quorum.transport import MAX_MESSAGE_BYTES, PeerChannels, Transport
from raftlog.raft.storage import MemoryStorage, RaftStorage, StorageError
from raftlog.storage.errors import NodeDBError
from raftlog.storage.node_db import NodeDB
from raftlog.storage.raft_store import RocksRaftStorage
from raftlog.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    broker_pb2,
    broker_pb2_grpc,
    replication_pb2,
    replication_pb2_grpc,
    controller_pb2,
    controller_pb2_grpc,
    raft_pb2,
    raft_pb2_grpc,
)

#: (config, the node's NodeDB) -> the Raft storage to use.
StorageFactory = Callable[[NodeConfig, NodeDB], RaftStorage]

#: Test-only switch read from the environment only (no flag, no config key).
DEBUG_UNSAFE_ACKS_ENV = "RAFTLOG_DEBUG_UNSAFE_ACKS"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STARTUP = 2

SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.so_reuseport", 0),  # a second node on the same port must fail, not share it
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)

SERVICE_NAMES = (
    broker_pb2.DESCRIPTOR.services_by_name["Broker"].full_name,
    replication_pb2.DESCRIPTOR.services_by_name["Replication"].full_name,
    raft_pb2.DESCRIPTOR.services_by_name["Quorum"].full_name,
    controller_pb2.DESCRIPTOR.services_by_name["Controller"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)


class StartupError(Exception):
    """The node cannot start; ``str(err)`` is one line naming why."""


def rocksdb_storage(config: NodeConfig, db: NodeDB) -> RaftStorage:
    """The production storage: the Raft log in the node's one RocksDB."""
    return RocksRaftStorage(db)


def memory_storage(config: NodeConfig, db: NodeDB) -> RaftStorage:
    """Volatile Raft storage, for tests that do not restart nodes (partitions still
    live in the NodeDB)."""
    return MemoryStorage()


class Node:
    """One raftlog node. ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        storage_factory: StorageFactory | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._storage_factory = storage_factory or rocksdb_storage
        self._rng = rng
        self.logger = get_logger("node", config.node_id)
        self.data_dir: DataDir | None = None
        self.storage: RaftStorage | None = None
        self.db: NodeDB | None = None
        self.replicas: ReplicaManager | None = None
        self._heartbeats: BrokerHeartbeatManager | None = None
        self._registration: BrokerRegistrationManager | None = None
        self._heartbeater: BrokerHeartbeater | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self.channels: PeerChannels | None = None
        self.transport: Transport | None = None
        self._driver: MetadataRaftDriver | None = None
        self._controller: QuorumController | None = None
        self.server: grpc.aio.Server | None = None
        self.servers: list[grpc.aio.Server] = []
        self.health = health.aio.HealthServicer()
        self.port = 0
        self._stopped = False

    # ------------------------------------------------------------------ accessors
    @property
    def driver(self) -> MetadataRaftDriver:
        if self._driver is None:
            raise RuntimeError("node not started")
        return self._driver

    @property
    def controller(self) -> QuorumController:
        if self._controller is None:
            raise RuntimeError("node not started")
        return self._controller

    @property
    def registration(self) -> BrokerRegistrationManager:
        if self._registration is None:
            raise RuntimeError("node not started")
        return self._registration

    @property
    def address(self) -> str:
        return f"{self.config.listen_host}:{self.port}"

    # ------------------------------------------------------------------ start
    async def start(self) -> None:
        """Open everything and serve. Raises StartupError (after releasing what it
        opened) for a bad data dir, unusable storage or a listen address in use."""
        try:
            await self._start()
        except BaseException:
            await self._close_resources()
            raise

    async def _start(self) -> None:
        cfg = self.config
        try:
            self.data_dir = DataDir.open(cfg.data_dir, cfg.cluster_id, cfg.node_id)
        except DataDirError as exc:
            raise StartupError(str(exc)) from None
        for listener in cfg.listeners:
            check_bindable(listener.host, listener.port)
        try:
            self.db = NodeDB.open(self.data_dir.path, sync=cfg.sync)
            self.storage = self._storage_factory(cfg, self.db)
        except NodeDBError as exc:
            raise StartupError(_one_line(exc)) from None
        except Exception as exc:  # noqa: BLE001 - any failure to open is a one-line startup error
            raise StartupError(
                f"data dir {cfg.data_dir}: cannot open storage: {type(exc).__name__}: {_one_line(exc)}"
            ) from None

        loader = MetadataLoader(cfg.node_id)
        self.channels = PeerChannels(cfg.voters, cfg.node_id)
        self.transport = Transport(
            cfg.node_id,
            cfg.cluster_id,
            [v.node_id for v in cfg.peers],
            channels=self.channels,
            rpc_timeout_s=cfg.rpc_timeout_ms / 1000,
            backoff_min_s=cfg.tick_ms / 1000,
        )
        driver = MetadataRaftDriver(cfg, self.storage, loader, self.transport, rng=self._rng)
        try:
            driver.restore()
        except (ValueError, StorageError, NodeDBError) as exc:
            raise StartupError(f"data dir {cfg.data_dir}: cannot restore raft state: {_one_line(exc)}") from None
        self._driver = driver
        self.transport.feedback = driver
        router = LeaderRouter(driver, self.channels)
        self._controller = QuorumController(cfg, driver)
        self._heartbeats = BrokerHeartbeatManager(cfg, driver, self._controller, self.transport)
        controller_service = ControllerService(cfg, self._controller, router, self._heartbeats)
        self._registration = BrokerRegistrationManager(cfg, controller_service.register_broker)
        self._heartbeater = BrokerHeartbeater(cfg, driver, self._registration)
        self.replicas = ReplicaManager(
            cfg.node_id,
            self.db,
            BrokerConfig(
                replica_lag_time_max_ms=cfg.replica_lag_time_max_ms,
                debug_unsafe_acks=os.environ.get(DEBUG_UNSAFE_ACKS_ENV) == "1",
            ),
            grpc_peer_factory,
            NodeControllerClient(controller_service),
        )

        quorum_service = QuorumService(cfg, driver)
        admin_service = AdminService(cfg, driver, router, self._controller)
        replication_service = ReplicationService(cfg.node_id, self.replicas)
        replicas = self.replicas
        # One gRPC server per named listener (Kafka's listeners): the Broker service
        # answers Metadata with the addresses of the listener the client came in on.
        for listener in cfg.listeners:
            server = grpc.aio.server(options=SERVER_OPTIONS)
            raft_pb2_grpc.add_QuorumServicer_to_server(quorum_service, server)
            controller_pb2_grpc.add_ControllerServicer_to_server(controller_service, server)
            admin_pb2_grpc.add_AdminServicer_to_server(admin_service, server)
            broker_pb2_grpc.add_BrokerServicer_to_server(
                BrokerService(
                    cfg.node_id, cfg.cluster_id, replicas,
                    allocate_producer_ids=replicas.allocate_producer_ids,
                    controller_id=lambda: driver.leader_id,
                    listener=listener.name,
                ),
                server,
            )
            replication_pb2_grpc.add_ReplicationServicer_to_server(replication_service, server)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
            reflection.enable_server_reflection(
                (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
            )
            try:
                port = server.add_insecure_port(listener.address)
            except RuntimeError:
                port = 0
            if not port:
                raise StartupError(
                    f"listener {listener.name} {listener.address}: cannot bind (port in use or address not local)"
                )
            if not self.servers:
                self.server, self.port = server, port
            self.servers.append(server)
            await server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

        driver.start()
        self.transport.start()
        await self.replicas.start()
        self._controller.start()
        self._registration.start()
        self._heartbeats.start()
        self._heartbeater.start()
        self._feed_task = asyncio.get_running_loop().create_task(
            self._feed_metadata(driver, self._registration, self.replicas), name=f"metadata-feed-{cfg.node_id}"
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.replicas.config.debug_unsafe_acks:  # TEST-ONLY: see BrokerConfig.debug_unsafe_acks
            self.logger.warning(f"UNSAFE: {DEBUG_UNSAFE_ACKS_ENV}=1: acks=all is answered before the high"
                             " watermark passes; acknowledged records can be lost. Test use only.")
        self.logger.info(
            "node started",
            listen=self.address,
            advertised=cfg.advertised_address,
            cluster_id=cfg.cluster_id,
            voters=",".join(f"{v.node_id}@{v.address}" for v in cfg.voters),
            data_dir=str(cfg.data_dir),
            new_data_dir=self.data_dir.created,
        )

    async def _feed_metadata(
        self, driver: MetadataRaftDriver, registration: BrokerRegistrationManager, replicas: ReplicaManager
    ) -> None:
        """Give the broker metadata only once this node's own registration is applied:
        images replayed from an old log could make it believe it still leads."""
        await registration.registered.wait()
        epoch = registration.broker_epoch or 0
        await driver.wait_until(lambda: driver.applied >= epoch, float("inf"))
        replicas.on_metadata(driver.image)
        driver.loader.subscribe(replicas.on_metadata)
        self.logger.info("broker serving metadata", metadata_offset=driver.image.offset)

    # ------------------------------------------------------------------ stop
    async def stop(self, *, controlled: bool = True) -> None:
        """Controlled shutdown: hand Raft leadership to the most caught-up follower
        (bounded wait), then stop serving and close storage. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        if controlled and self._heartbeater is not None and self._driver is not None and self._driver.running:
            # Kafka's controlled shutdown: leaderships move to in-sync replicas first.
            await self._heartbeater.controlled_shutdown(self.config.shutdown_timeout_ms / 1000)
        if self._feed_task is not None:
            self._feed_task.cancel()
        if self._heartbeater is not None:
            await self._heartbeater.stop()
        if self._heartbeats is not None:
            await self._heartbeats.stop()
        if self._registration is not None:
            await self._registration.stop()
        if self._controller is not None:
            await self._controller.stop()
        if self.server is not None:
            await self.health.enter_graceful_shutdown()
        if controlled and self._driver is not None and self._driver.running:
            await self._resign_leadership(self._driver)
        await self._close_resources()
        self.logger.info("node stopped", controlled=controlled,
                      took_ms=int((time.monotonic() - started) * 1000))

    async def _resign_leadership(self, driver: MetadataRaftDriver) -> None:
        if not driver.is_leader or not self.config.peers:
            return
        status = await driver.status()
        followers = [(pr.recent_active, pr.match, peer) for peer, pr in status.progress
                     if peer != self.config.node_id]
        if not followers:
            return
        _, match, target = max(followers)
        timeout = self.config.shutdown_timeout_ms / 1000
        self.logger.info("transferring leadership before shutdown", to=target, match=match,
                      last_index=status.last_index)
        try:
            await driver.transfer_leadership(target)
        except Exception as exc:  # noqa: BLE001 - shutdown goes on regardless
            self.logger.warning("leadership transfer failed", to=target, error=repr(exc))
            return
        me = self.config.node_id
        if await driver.wait_until(lambda: driver.leader_id not in (0, me), timeout):
            self.logger.info("leadership transferred", leader_id=driver.leader_id, term=driver.term)
        else:
            self.logger.warning("no new leader before the shutdown deadline",
                             waited_ms=int(timeout * 1000))

    async def _close_resources(self) -> None:
        for server in self.servers:
            await server.stop(grace=0.5)
        self.servers = []
        self.server = None
        if self.replicas is not None:
            try:
                await self.replicas.stop()
            except Exception as exc:  # noqa: BLE001 - shutdown goes on regardless
                self.logger.error("stopping the replica manager failed", error=repr(exc))
            self.replicas = None
        if self._driver is not None:
            await self._driver.stop()
        if self.transport is not None:
            await self.transport.close()
        if self.channels is not None:
            await self.channels.close()
        for closer in (self.storage, self.db):
            if closer is None:
                continue
            try:
                closer.close()
            except Exception as exc:  # noqa: BLE001
                self.logger.error("closing storage failed", error=repr(exc))
        self.storage = None
        self.db = None
        if self.data_dir is not None:
            self.data_dir.close()
            self.data_dir = None


def check_bindable(host: str, port: int) -> None:
    """Fail fast, with the OS's reason, when the listen address cannot be bound
    (before gRPC tries and logs its own multi-line complaint)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"listen address {host}:{port}: {exc.strerror}") from None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                raise StartupError(
                    f"listen address {host}:{port}: cannot bind: {exc.strerror or exc}"
                ) from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def run_node(
    config: NodeConfig,
    *,
    report_error: Callable[[str], None] | None = None,
    storage_factory: StorageFactory | None = None,
) -> int:
    """Run a node until SIGTERM/SIGINT; returns the process exit code (0 after a
    controlled shutdown, 2 when it could not start, 1 when it failed while running).
    ``report_error`` receives the one-line reason a start failed (default: logged)."""
    node = Node(config, storage_factory=storage_factory)
    try:
        await node.start()
    except StartupError as exc:
        if report_error is not None:
            report_error(str(exc))
        else:
            node.logger.error("node failed to start", error=str(exc))
        return EXIT_STARTUP

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        stop_task = asyncio.ensure_future(stop.wait())
        died_task = asyncio.ensure_future(node.driver.died.wait())
        await asyncio.wait({stop_task, died_task}, return_when=asyncio.FIRST_COMPLETED)
        stop_task.cancel()
        died_task.cancel()
        failed = node.driver.fatal is not None
        if stop.is_set():
            node.logger.info("shutdown requested")
        await node.stop(controlled=not failed)
        return EXIT_FAILED if failed else EXIT_OK
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
            # Shutdown is done; a repeated SIGTERM must not turn a clean exit into -15.
            signal.signal(sig, signal.SIG_IGN)
