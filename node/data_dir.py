"""The node's data directory and its identity file ``meta.json``.

Like Kafka's ``meta.properties``: the directory remembers which cluster and which
node it belongs to, so a node started on another cluster's or another node's data
fails loudly instead of mixing logs. The file is written once, on first start,
atomically (temp file, fsync, rename, fsync of the directory). Nothing here ever
deletes or rewrites existing data.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

META_FILE = "meta.json"
LOCK_FILE = ".lock"
META_VERSION = 1


class DataDirError(Exception):
    """The data directory cannot be used; ``str(err)`` is one line naming why."""


class DataDirLockedError(DataDirError):
    """Another process holds the data directory."""


@dataclass(frozen=True, slots=True)
class DataDirMeta:
    cluster_id: str
    node_id: int
    version: int = META_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {"cluster_id": self.cluster_id, "node_id": self.node_id, "version": self.version},
            sort_keys=True,
        )


class DataDir:
    """An opened, locked and identity-checked data directory. ``close()`` unlocks it."""

    def __init__(self, path: Path, meta: DataDirMeta, lock_fd: int, created: bool) -> None:
        self.path = path
        self.meta = meta
        self.created = created
        self._lock_fd: int | None = lock_fd

    @classmethod
    def open(cls, path: Path, cluster_id: str, node_id: int) -> DataDir:
        """Create (first start) or check the directory; lock it for this process."""
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"data dir {path}: cannot create: {_reason(exc)}") from None
        if not path.is_dir():
            raise DataDirError(f"data dir {path}: not a directory")
        if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            raise DataDirError(f"data dir {path}: not readable and writable by this user")
        lock_fd = _lock(path)
        try:
            meta, created = _check_or_create_meta(path, cluster_id, node_id)
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, meta, lock_fd, created)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


def read_meta(path: Path) -> DataDirMeta | None:
    """The identity stored in ``path`` (None when there is no meta.json yet)."""
    meta_path = Path(path) / META_FILE
    try:
        text = meta_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataDirError(f"data dir {path}: cannot read {META_FILE}: {_reason(exc)}") from None
    try:
        data = json.loads(text)
        cluster_id = data["cluster_id"]
        node_id = data["node_id"]
        version = data.get("version", META_VERSION)
        if not isinstance(cluster_id, str) or not isinstance(node_id, int) or not isinstance(
            version, int
        ):
            raise TypeError("bad field types")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataDirError(f"data dir {path}: {META_FILE} is damaged ({exc})") from None
    return DataDirMeta(cluster_id=cluster_id, node_id=node_id, version=version)


def _check_or_create_meta(path: Path, cluster_id: str, node_id: int) -> tuple[DataDirMeta, bool]:
    existing = read_meta(path)
    if existing is None:
        databases = _databases(path)
        if databases:
            # meta.json is written before the database is created, so a database
            # without it was not made here: do not adopt it (and never wipe it).
            raise DataDirError(
                f"data dir {path}: holds a database ({databases[0]}) but no {META_FILE}; "
                "refusing to adopt it"
            )
        meta = DataDirMeta(cluster_id=cluster_id, node_id=node_id)
        _write_atomically(path, META_FILE, meta.to_json() + "\n")
        return meta, True
    if existing.version > META_VERSION:
        raise DataDirError(
            f"data dir {path}: {META_FILE} version {existing.version} is newer than this "
            f"raftlog understands ({META_VERSION})"
        )
    if existing.cluster_id != cluster_id:
        raise DataDirError(
            f"data dir {path}: belongs to cluster {existing.cluster_id!r}, "
            f"but this node is configured for cluster {cluster_id!r}"
        )
    if existing.node_id != node_id:
        raise DataDirError(
            f"data dir {path}: belongs to node {existing.node_id}, "
            f"but this node is configured as node {node_id}"
        )
    return existing, False


def _databases(path: Path) -> list[str]:
    """RocksDB directories (they hold a CURRENT file) at or one level below ``path``."""
    found = ["."] if (path / "CURRENT").exists() else []
    for child in sorted(path.iterdir()):
        if child.is_dir() and (child / "CURRENT").exists():
            found.append(child.name)
    return found


def _lock(path: Path) -> int:
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataDirError(f"data dir {path}: cannot create {LOCK_FILE}: {_reason(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise DataDirLockedError(
                f"data dir {path}: in use by another raftlog process"
            ) from None
        raise DataDirError(f"data dir {path}: cannot lock: {_reason(exc)}") from None
    return fd


def _write_atomically(directory: Path, name: str, text: str) -> None:
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / name)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise DataDirError(f"data dir {directory}: cannot write {name}: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
