"""Broker tests run against the in-memory PartitionLog until the RocksDB one exists;
set RAFTLOG_TEST_REAL_LOG=1 to force the real one (it is used automatically once
``PartitionLog.open`` stops raising NotImplementedError)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from raftlog.node.broker.replica_manager import LogFactory
from tests.broker.fake_log import MemoryPartitionLog


def _real_log_available() -> bool:
    from raftlog.storage.node_db import NodeDB
    from raftlog.storage.partition_log import PartitionLog

    with tempfile.TemporaryDirectory() as tmp:
        db = NodeDB.open(Path(tmp), sync=False)
        try:
            PartitionLog.open(db, "AAAAAAAAAAAAAAAAAAAAAA", 0)
        except NotImplementedError:
            return False
        except Exception:  # noqa: BLE001 - any other failure: treat as not ready
            return os.environ.get("RAFTLOG_TEST_REAL_LOG") == "1"
        finally:
            db.close()
    return True


@pytest.fixture(scope="session")
def log_factory() -> LogFactory | None:
    """None: ReplicaManager's default, the real PartitionLog."""
    if os.environ.get("RAFTLOG_TEST_FAKE_LOG") == "1" or not _real_log_available():
        return MemoryPartitionLog.open
    return None
