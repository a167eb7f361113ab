"""The data dir's identity file: created once, checked on every start, never wiped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from raftlog.node.data_dir import DataDir, DataDirError, DataDirLockedError, read_meta


def test_created_on_first_start_then_checked(tmp_path: Path) -> None:
    path = tmp_path / "d" / "node-1"
    dd = DataDir.open(path, "cluster-a", 1)
    assert dd.created
    assert json.loads((path / "meta.json").read_text()) == {
        "cluster_id": "cluster-a", "node_id": 1, "version": 1
    }
    dd.close()
    dd = DataDir.open(path, "cluster-a", 1)
    assert not dd.created and dd.meta.node_id == 1
    dd.close()


def test_another_cluster_or_node_is_refused_naming_both_ids(tmp_path: Path) -> None:
    DataDir.open(tmp_path, "cluster-a", 1).close()
    (tmp_path / "keep.txt").write_text("data")
    with pytest.raises(DataDirError) as info:
        DataDir.open(tmp_path, "cluster-b", 1)
    assert "'cluster-a'" in str(info.value) and "'cluster-b'" in str(info.value)
    with pytest.raises(DataDirError) as info:
        DataDir.open(tmp_path, "cluster-a", 2)
    assert "node 1" in str(info.value) and "node 2" in str(info.value)
    assert "\n" not in str(info.value)
    # Nothing was wiped or rewritten.
    assert (tmp_path / "keep.txt").read_text() == "data"
    assert read_meta(tmp_path) is not None and read_meta(tmp_path).cluster_id == "cluster-a"  # type: ignore[union-attr]


def test_a_second_process_is_refused_while_the_dir_is_held(tmp_path: Path) -> None:
    dd = DataDir.open(tmp_path, "c", 1)
    try:
        with pytest.raises(DataDirLockedError, match="in use"):
            DataDir.open(tmp_path, "c", 1)
    finally:
        dd.close()
    DataDir.open(tmp_path, "c", 1).close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any directory")
def test_unwritable_dir(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(DataDirError, match="not readable and writable"):
            DataDir.open(tmp_path, "c", 1)
    finally:
        tmp_path.chmod(0o700)


def test_path_that_is_a_file_or_under_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DataDirError, match="cannot create|not a directory"):
        DataDir.open(f, "c", 1)
    with pytest.raises(DataDirError, match="cannot create"):
        DataDir.open(f / "sub", "c", 1)


def test_damaged_meta_and_newer_version(tmp_path: Path) -> None:
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(DataDirError, match="damaged"):
        DataDir.open(tmp_path, "c", 1)
    (tmp_path / "meta.json").write_text('{"cluster_id": "c", "node_id": 1, "version": 99}')
    with pytest.raises(DataDirError, match="newer"):
        DataDir.open(tmp_path, "c", 1)


def test_a_database_without_meta_is_not_adopted(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "CURRENT").write_text("MANIFEST-000001\n")
    with pytest.raises(DataDirError, match="refusing to adopt"):
        DataDir.open(tmp_path, "c", 1)
    assert (tmp_path / "db" / "CURRENT").exists()
    assert not (tmp_path / "meta.json").exists()


def test_unrelated_files_do_not_block_first_start(tmp_path: Path) -> None:
    (tmp_path / "node.log").write_text("log")
    DataDir.open(tmp_path, "c", 1).close()
