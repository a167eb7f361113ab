"""NodeConfig from flags, RAFTLOG_* env vars and TOML: values, precedence, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from raftlog.node.config import ConfigError, Voter, default_cluster_id, load_config, parse_voters

VOTERS = "1@127.0.0.1:9091,2@127.0.0.1:9092,3@127.0.0.1:9093"


def flags(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"node_id": "1", "voters": VOTERS, "data_dir": "/tmp/x"}
    base.update(kw)
    return base


def test_defaults_and_derived_values() -> None:
    cfg = load_config(flags())
    assert cfg.node_id == 1
    assert cfg.voters == (
        Voter(1, "127.0.0.1", 9091), Voter(2, "127.0.0.1", 9092), Voter(3, "127.0.0.1", 9093)
    )
    assert cfg.listen_address == "127.0.0.1:9091"  # this node's voter address
    assert cfg.advertised_address == cfg.listen_address
    assert (cfg.tick_ms, cfg.election_tick, cfg.heartbeat_tick, cfg.sync) == (50, 10, 1, True)
    assert cfg.log_format == "json"
    assert [v.node_id for v in cfg.peers] == [2, 3]


def test_cluster_id_is_derived_from_the_voter_set_alone() -> None:
    a = load_config(flags(node_id="1")).cluster_id
    b = load_config(flags(node_id="3", voters="3@127.0.0.1:9093,1@127.0.0.1:9091,2@127.0.0.1:9092")).cluster_id
    c = load_config(flags(voters="1@127.0.0.1:9091,2@127.0.0.1:9092,3@127.0.0.1:9094")).cluster_id
    assert a == b != c
    assert len(a) == 22  # Kafka's form: a base64url UUID
    assert load_config(flags(cluster_id="my-cluster")).cluster_id == "my-cluster"
    assert default_cluster_id(parse_voters(VOTERS)) == a


def test_wildcard_listen_advertises_the_voter_address() -> None:
    cfg = load_config(flags(listen="0.0.0.0:7000"))
    assert cfg.listen_address == "0.0.0.0:7000"
    assert cfg.advertised_address == "127.0.0.1:7000"
    cfg = load_config(flags(listen="0.0.0.0:7000", advertised="node1.example:7000"))
    assert cfg.advertised_address == "node1.example:7000"


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    toml = tmp_path / "node.toml"
    toml.write_text(
        f'node_id = 2\nvoters = "{VOTERS}"\ndata_dir = "/data"\ntick_ms = 10\nelection_tick = 20\n'
        'log_format = "console"\nsync = false\n'
    )
    env = {"RAFTLOG_TICK_MS": "30", "RAFTLOG_NODE_ID": "3"}
    cfg = load_config({"node_id": None, "tick_ms": "40"}, env=env, config_file=toml)
    assert cfg.node_id == 3  # env beats file
    assert cfg.tick_ms == 40  # flag beats env
    assert cfg.election_tick == 20 and cfg.log_format == "console" and cfg.sync is False
    assert cfg.data_dir == Path("/data")
    # The file can also come from RAFTLOG_CONFIG, and voters may be a TOML array.
    toml.write_text('node_id = 1\nvoters = ["1@h1:1", "2@h2:2", "3@h3:3"]\ndata_dir = "/d"\n')
    cfg = load_config({}, env={"RAFTLOG_CONFIG": str(toml)})
    assert [v.address for v in cfg.voters] == ["h1:1", "h2:2", "h3:3"]


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"voters": "1@127.0.0.1:9091,1@127.0.0.1:9092"}, "node id 1 appears more than once"),
        ({"voters": "1@127.0.0.1:9091,,2@127.0.0.1:9092"}, "not a list of ID@HOST:PORT"),
        ({"voters": "1-127.0.0.1:9091"}, "is not ID@HOST:PORT"),
        ({"voters": "x@127.0.0.1:9091"}, "node id 'x' is not a number"),
        ({"voters": "0@127.0.0.1:9091"}, "positive"),
        ({"voters": "-2@127.0.0.1:9091"}, "positive"),
        ({"voters": "1@127.0.0.1:99999"}, "out of range"),
        ({"voters": "1@127.0.0.1:port"}, "is not a number"),
        ({"voters": "1@127.0.0.1"}, "is not HOST:PORT"),
        ({"voters": "1@a:1,2@a:1"}, "more than one node id"),
        ({"node_id": "4"}, "node_id: 4 is not among the voters (1, 2, 3)"),
        ({"node_id": "zero"}, "node_id: 'zero' is not an integer (from --node-id)"),
        ({"listen": "localhost"}, "listen: 'localhost' is not HOST:PORT"),
        ({"listen": "127.0.0.1:0"}, "out of range"),
        ({"listen": "::1:9091"}, "IPv6"),
        ({"tick_ms": "0"}, "tick_ms: 0 is out of range"),
        ({"heartbeat_tick": "10"}, "must be smaller than election_tick"),
        ({"cluster_id": "has space"}, "cluster_id"),
        ({"log_format": "xml"}, "log_format"),
        ({"data_dir": None}, "data_dir is required"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(kw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(flags(**kw))
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_env_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"\$RAFTLOG_TICK_MS"):
        load_config(flags(), env={"RAFTLOG_TICK_MS": "fast"})


def test_bad_config_file(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("node_id = \n")
    with pytest.raises(ConfigError, match="config file"):
        load_config(flags(), config_file=toml)
    toml.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_config(flags(), config_file=toml)
    with pytest.raises(ConfigError, match="config file"):
        load_config(flags(), config_file=tmp_path / "missing.toml")


def test_ipv6_voters() -> None:
    cfg = load_config(flags(voters="1@[::1]:9091,2@[::1]:9092,3@[::1]:9093"))
    assert cfg.listen_address == "[::1]:9091"
