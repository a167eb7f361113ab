"""`raftlog node start` input errors: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from raftlog.cli.main import main
from raftlog.node.data_dir import DataDir

VOTERS = "1@127.0.0.1:19091,2@127.0.0.1:19092,3@127.0.0.1:19093"


def start(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["node", "start", *args], env=env or {})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--node-id", "1", "--voters", "1@127.0.0.1:19091,1@127.0.0.1:19092"], "appears more than once"),
        (["--node-id", "1", "--voters", "1@127.0.0.1"], "not HOST:PORT"),
        (["--node-id", "4", "--voters", VOTERS], "not among the voters"),
        (["--node-id", "1", "--voters", VOTERS, "--listen", "nowhere"], "listen"),
        (["--voters", VOTERS], "node_id is required"),
    ],
)
def test_config_errors(tmp_path: Path, args: list[str], fragment: str) -> None:
    code, err = start(*args, "--data-dir", str(tmp_path))
    assert code == 2
    assert err.startswith("error: ") and fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_env_vars_are_read(tmp_path: Path) -> None:
    code, err = start(env={"RAFTLOG_NODE_ID": "9", "RAFTLOG_VOTERS": VOTERS,
                           "RAFTLOG_DATA_DIR": str(tmp_path)})
    assert code == 2 and "node_id: 9 is not among the voters" in err


def test_data_dir_of_another_cluster(tmp_path: Path) -> None:
    DataDir.open(tmp_path, "some-other-cluster", 1).close()
    code, err = start("--node-id", "1", "--voters", VOTERS, "--data-dir", str(tmp_path))
    assert code == 2
    assert err.startswith("error: data dir") and "'some-other-cluster'" in err
    assert err.count("\n") == 1


def test_data_dir_of_another_node(tmp_path: Path) -> None:
    # The dir belongs to node 2 of cluster c1; node 1 of c1 is started on it.
    DataDir.open(tmp_path / "d", "c1", 2).close()
    code, err = start("--node-id", "1", "--voters", VOTERS, "--data-dir", str(tmp_path / "d"),
                      "--cluster-id", "c1")
    assert code == 2 and "belongs to node 2" in err and "node 1" in err


def test_unusable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = start("--node-id", "1", "--voters", VOTERS, "--data-dir", str(blocker / "sub"))
    assert code == 2 and err.startswith("error: data dir") and err.count("\n") == 1
    # meta.json that cannot be read (here: a directory).
    (tmp_path / "d" / "meta.json").mkdir(parents=True)
    code, err = start("--node-id", "1", "--voters", VOTERS, "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "cannot read meta.json" in err
