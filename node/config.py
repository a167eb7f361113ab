"""NodeConfig: the one typed configuration object of a node.

Built from three sources, later ones winning: an optional TOML file, ``RAFTLOG_*``
environment variables, then command-line flags. Every setting has one name used
everywhere: the TOML key ``snapshot_every`` is the env var ``RAFTLOG_SNAPSHOT_EVERY``
and the flag ``--snapshot-every``. A bad value raises ``ConfigError`` whose message
is one line naming the setting, where it came from and what is wrong.
"""

from __future__ import annotations

import base64
import ipaddress
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

ENV_PREFIX = "RAFTLOG_"

#: Namespace of the cluster id derived from a voter set (uuid5 of the sorted voters).
_CLUSTER_NAMESPACE = uuid.UUID("5b0c6c2e-2f4e-4a57-9a53-7a1c1f6d6b10")

_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


class ConfigError(ValueError):
    """A configuration problem; ``str(err)`` is one line naming it."""


class Voter(NamedTuple):
    """One controller voter: ``(node_id, host, port)``."""

    node_id: int
    host: str
    port: int

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)


def format_address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"  # IPv6 literal
    return f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Listener:
    """A named listener, Kafka's ``NAME://host:port``."""

    name: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)


INTER_BROKER_LISTENER = "INTERNAL"


def parse_listeners(text: str, what: str) -> tuple[Listener, ...]:
    """``NAME://host:port,...`` (Kafka's listeners syntax), names unique."""
    listeners: list[Listener] = []
    for item in (part.strip() for part in text.split(",")):
        name, sep, address = item.partition("://")
        if not sep or not name or not name.replace("_", "").isalnum():
            raise ConfigError(f"{what}: {item!r} is not NAME://HOST:PORT")
        host, port = parse_address(address, what)
        if any(listener.name == name.upper() for listener in listeners):
            raise ConfigError(f"{what}: listener {name.upper()} is given twice")
        listeners.append(Listener(name.upper(), host, port))
    return tuple(listeners)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: int
    listen_host: str
    listen_port: int
    advertised_host: str
    advertised_port: int
    voters: tuple[Voter, ...]
    data_dir: Path
    cluster_id: str
    tick_ms: int = 50
    election_tick: int = 10
    heartbeat_tick: int = 1
    snapshot_every: int = 1000
    """Take a metadata snapshot once this many entries were applied since the last."""
    snapshot_keep_entries: int = 500
    """Entries kept in the log before the snapshot index, for slow followers."""
    sync: bool = True
    log_format: str = "json"
    log_level: str = "info"
    rpc_timeout_ms: int = 2000
    """Deadline of one Raft Step RPC to a peer."""
    request_timeout_ms: int = 5000
    """Default wait for a proposal to commit (ProposeRequest.timeout_ms = 0)."""
    no_op_interval_ms: int = 500
    """KIP-835 metadata.max.idle.interval.ms: the leader's idle no-op record period."""
    shutdown_timeout_ms: int = 2000
    """How long a leader waits for its successor during a controlled shutdown."""
    broker_session_timeout_ms: int = 6000
    """Kafka's broker.session.timeout.ms (9000 there): a broker silent this long is
    fenced. A broker whose process died is fenced at once (its heartbeat stream
    breaks, or its port refuses connections); this bounds only silent failures."""
    broker_heartbeat_interval_ms: int = 500
    """Kafka's broker.heartbeat.interval.ms (2000 there)."""
    replica_lag_time_max_ms: int = 10000
    """Kafka's replica.lag.time.max.ms (30000 there): a follower this far behind
    leaves the ISR, so a stuck replica cannot hold acks=all for long."""
    listeners: tuple[Listener, ...] = ()
    """Every listener this node binds; the inter-broker one first. Peers, the quorum
    and replication use the inter-broker listener; clients use any."""
    advertised_listeners: tuple[Listener, ...] = ()
    """What metadata tells a client for each listener (the listener it came in on)."""
    inter_broker_listener: str = INTER_BROKER_LISTENER

    @property
    def listen_address(self) -> str:
        return format_address(self.listen_host, self.listen_port)

    @property
    def advertised_address(self) -> str:
        return format_address(self.advertised_host, self.advertised_port)

    @property
    def voter_ids(self) -> tuple[int, ...]:
        return tuple(v.node_id for v in self.voters)

    def voter(self, node_id: int) -> Voter | None:
        for v in self.voters:
            if v.node_id == node_id:
                return v
        return None

    @property
    def peers(self) -> tuple[Voter, ...]:
        """The other voters."""
        return tuple(v for v in self.voters if v.node_id != self.node_id)


# --------------------------------------------------------------------------- parsing


def parse_address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6 literals) -> (host, port)."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{what}: {text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{what}: {text!r} has a bad IPv6 address") from None
    elif ":" in host:
        raise ConfigError(f"{what}: {text!r}: write IPv6 addresses as [ADDR]:PORT")
    if any(c.isspace() for c in host) or "/" in host or "@" in host:
        raise ConfigError(f"{what}: {text!r} has a bad host")
    port = _parse_port(port_text, f"{what}: {text!r}")
    return host, port


def _parse_port(text: str, what: str) -> int:
    if not text.isdigit():
        raise ConfigError(f"{what}: port {text!r} is not a number")
    port = int(text)
    if not 0 < port < 65536:
        raise ConfigError(f"{what}: port {port} is out of range 1-65535")
    return port


def parse_voters(text: str) -> tuple[Voter, ...]:
    """``1@host:port,2@host:port,...`` -> voters sorted by id."""
    voters: dict[int, Voter] = {}
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise ConfigError(f"voters: {text!r} is not a list of ID@HOST:PORT separated by commas")
    for item in items:
        id_text, sep, addr = item.partition("@")
        if not sep:
            raise ConfigError(f"voters: {item!r} is not ID@HOST:PORT")
        try:
            node_id = int(id_text.strip())
        except ValueError:
            raise ConfigError(f"voters: {item!r}: node id {id_text!r} is not a number") from None
        if node_id <= 0 or node_id >= 2**31:
            raise ConfigError(f"voters: {item!r}: node id must be a positive 32-bit integer")
        if node_id in voters:
            raise ConfigError(f"voters: node id {node_id} appears more than once")
        host, port = parse_address(addr, f"voters: {item!r}")
        voters[node_id] = Voter(node_id, host, port)
    addresses = [v.address for v in voters.values()]
    for address in addresses:
        if addresses.count(address) > 1:
            raise ConfigError(f"voters: address {address} is given to more than one node id")
    return tuple(sorted(voters.values()))


def default_cluster_id(voters: tuple[Voter, ...]) -> str:
    """The cluster id every node with the same voter set derives without talking:
    a uuid5 of the sorted voter list, in Kafka's cluster id form (22 chars, base64url)."""
    canonical = ",".join(f"{v.node_id}@{v.address}" for v in sorted(voters))
    raw = uuid.uuid5(_CLUSTER_NAMESPACE, canonical).bytes
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _check_cluster_id(text: str) -> str:
    text = text.strip()
    if not text:
        raise ConfigError("cluster_id: must not be empty")
    if len(text) > 64 or not all(c.isalnum() or c in "-_." for c in text):
        raise ConfigError(
            f"cluster_id: {text!r} must be at most 64 letters, digits, '-', '_' or '.'"
        )
    return text


def _int(name: str, lo: int, hi: int = 2**31 - 1) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise ConfigError(f"{name}: {value!r} is not an integer")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise ConfigError(f"{name}: {value!r} is not an integer") from None
        if not lo <= number <= hi:
            raise ConfigError(f"{name}: {number} is out of range {lo}-{hi}")
        return number

    return parse


def _bool(name: str) -> Callable[[Any], bool]:
    def parse(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: {value!r} is not a boolean (true/false)")

    return parse


def _choice(name: str, choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _str(name: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: {value!r} is not a string")
        return value

    return parse


def _voters_value(value: Any) -> str:
    if isinstance(value, list):  # TOML may list voters as an array of strings
        return ",".join(str(v) for v in value)
    return _str("voters")(value)


#: Every setting: name -> parser of a raw value (str from env/flags, TOML-typed from the file).
SETTINGS: dict[str, Callable[[Any], Any]] = {
    "node_id": _int("node_id", 1),
    "listen": _str("listen"),
    "listeners": _str("listeners"),
    "advertised_listeners": _str("advertised_listeners"),
    "inter_broker_listener": _str("inter_broker_listener"),
    "advertised": _str("advertised"),
    "voters": _voters_value,
    "data_dir": _str("data_dir"),
    "cluster_id": _str("cluster_id"),
    "tick_ms": _int("tick_ms", 1, 60_000),
    "election_tick": _int("election_tick", 2, 10_000),
    "heartbeat_tick": _int("heartbeat_tick", 1, 10_000),
    "snapshot_every": _int("snapshot_every", 1),
    "snapshot_keep_entries": _int("snapshot_keep_entries", 0),
    "sync": _bool("sync"),
    "log_format": _choice("log_format", ("json", "console")),
    "log_level": _choice("log_level", ("debug", "info", "warning", "error")),
    "rpc_timeout_ms": _int("rpc_timeout_ms", 1),
    "request_timeout_ms": _int("request_timeout_ms", 1),
    "no_op_interval_ms": _int("no_op_interval_ms", 1),
    "shutdown_timeout_ms": _int("shutdown_timeout_ms", 0),
    "broker_session_timeout_ms": _int("broker_session_timeout_ms", 100),
    "broker_heartbeat_interval_ms": _int("broker_heartbeat_interval_ms", 10),
    "replica_lag_time_max_ms": _int("replica_lag_time_max_ms", 100),
}


def env_var(name: str) -> str:
    """The environment variable of a setting: ``tick_ms`` -> ``RAFTLOG_TICK_MS``."""
    return ENV_PREFIX + name.upper()


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    # Accept either top-level keys or a [node] table; dashes or underscores.
    table = data.get("node", data) if isinstance(data.get("node"), dict) else data
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_").replace(".", "_")
        if name not in SETTINGS:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
        out[name] = value
    return out


def load_config(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: Path | str | None = None,
) -> NodeConfig:
    """Merge file < env < flags (``None`` flag values are "not given") and validate.

    ``config_file`` may also come from ``RAFTLOG_CONFIG``. ``env`` defaults to no
    environment at all, so callers pass ``os.environ`` explicitly.
    """
    env = env or {}
    flags = flags or {}
    raw: dict[str, tuple[Any, str]] = {}
    path = config_file if config_file is not None else env.get(ENV_PREFIX + "CONFIG")
    if path:
        for name, value in read_toml(Path(path)).items():
            raw[name] = (value, f"config file {path}")
    for name in SETTINGS:
        var = env_var(name)
        if env.get(var, "") != "":
            raw[name] = (env[var], f"${var}")
    for name, value in flags.items():
        if name not in SETTINGS:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            raw[name] = (value, "--" + name.replace("_", "-"))

    values: dict[str, Any] = {}
    for name, (value, source) in raw.items():
        try:
            values[name] = SETTINGS[name](value)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (from {source})") from None

    for required in ("node_id", "voters", "data_dir"):
        if required not in values:
            raise ConfigError(
                f"{required} is required (--{required.replace('_', '-')} or ${env_var(required)})"
            )
    voters = parse_voters(values["voters"])
    node_id: int = values["node_id"]
    me = next((v for v in voters if v.node_id == node_id), None)
    if me is None:
        ids = ", ".join(str(v.node_id) for v in voters)
        raise ConfigError(f"node_id: {node_id} is not among the voters ({ids})")

    inter_broker = values.get("inter_broker_listener", INTER_BROKER_LISTENER).upper()
    if "listeners" in values:
        if "listen" in values:
            raise ConfigError("listen and listeners: give one of them")
        listeners = parse_listeners(values["listeners"], "listeners")
    else:
        host, port = parse_address(values["listen"], "listen") if "listen" in values else (me.host, me.port)
        listeners = (Listener(inter_broker, host, port),)
    names = [listener.name for listener in listeners]
    if inter_broker not in names:
        raise ConfigError(f"inter_broker_listener: {inter_broker} is not among the listeners ({', '.join(names)})")
    # The inter-broker listener first: the first registered endpoint is what peers dial.
    listeners = tuple(sorted(listeners, key=lambda listener: listener.name != inter_broker))
    if "advertised_listeners" in values:
        if "advertised" in values:
            raise ConfigError("advertised and advertised_listeners: give one of them")
        given = {a.name: a for a in parse_listeners(values["advertised_listeners"], "advertised_listeners")}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ConfigError(f"advertised_listeners: {', '.join(unknown)} is not among the listeners")
    else:
        given = {}
        if "advertised" in values:
            host, port = parse_address(values["advertised"], "advertised")
            given[inter_broker] = Listener(inter_broker, host, port)
    advertised = tuple(
        given.get(listener.name)
        # A wildcard is no address to advertise: use the voter host.
        or Listener(listener.name, me.host if listener.host in _WILDCARD_HOSTS else listener.host, listener.port)
        for listener in listeners
    )
    listen_host, listen_port = listeners[0].host, listeners[0].port
    adv_host, adv_port = advertised[0].host, advertised[0].port

    data_dir_text: str = values["data_dir"]
    if not data_dir_text.strip():
        raise ConfigError("data_dir: must not be empty")
    cluster_id = (
        _check_cluster_id(values["cluster_id"])
        if "cluster_id" in values
        else default_cluster_id(voters)
    )
    election_tick = values.get("election_tick", 10)
    heartbeat_tick = values.get("heartbeat_tick", 1)
    if heartbeat_tick >= election_tick:
        raise ConfigError(
            f"heartbeat_tick ({heartbeat_tick}) must be smaller than election_tick ({election_tick})"
        )
    optional = {
        k: values[k]
        for k in (
            "tick_ms",
            "snapshot_every",
            "snapshot_keep_entries",
            "sync",
            "log_format",
            "log_level",
            "rpc_timeout_ms",
            "request_timeout_ms",
            "no_op_interval_ms",
            "shutdown_timeout_ms",
            "broker_session_timeout_ms",
            "broker_heartbeat_interval_ms",
            "replica_lag_time_max_ms",
        )
        if k in values
    }
    return NodeConfig(
        node_id=node_id,
        listen_host=listen_host,
        listen_port=listen_port,
        advertised_host=adv_host,
        advertised_port=adv_port,
        voters=voters,
        listeners=listeners,
        advertised_listeners=advertised,
        inter_broker_listener=inter_broker,
        data_dir=Path(data_dir_text).expanduser(),
        cluster_id=cluster_id,
        election_tick=election_tick,
        heartbeat_tick=heartbeat_tick,
        **optional,
    )
