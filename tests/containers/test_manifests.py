"""Structure of deploy/: the Kubernetes manifests, the compose file and the Dockerfile.

Runs without Docker or kubectl: the YAML is parsed and cross-checked (selectors match
labels, the StatefulSet's serviceName is the headless Service, probes hit the gRPC
port...), and every node command is fed to the node's real config parser, so a flag
renamed in `raftlog node start` breaks this test rather than a deployment. The pod
entrypoint script is run with /bin/sh and a stand-in `raftlog` to check the node id and
voters it derives from the pod name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from raftlog.node.config import load_config

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to check deploy/ (test extra: pyyaml)")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
GRPC_PORT = 9091
DATA_MOUNT = "/data"
UID = 10001


# ----------------------------------------------------------------------------- helpers
def load_k8s() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object of every manifest, by (kind, name)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in objects, f"{key} defined twice"
            objects[key] = doc
    return objects


def one(objects: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for (k, _), o in objects.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def flags_of(args: list[str]) -> dict[str, str]:
    """`--name=value` / `--name value` arguments after `node start`, as config names."""
    assert args[:2] == ["node", "start"], args
    flags: dict[str, str] = {}
    rest = args[2:]
    i = 0
    while i < len(rest):
        arg = rest[i]
        assert arg.startswith("--"), f"unexpected argument {arg!r}"
        if "=" in arg:
            name, value = arg[2:].split("=", 1)
        else:
            name, value = arg[2:], rest[i + 1]
            i += 1
        flags[name.replace("-", "_")] = value
        i += 1
    return flags


def node_config(args: list[str]) -> Any:
    """What `raftlog node start ARGS` would run with (the real parser; no env)."""
    return load_config(flags_of(args), env={})


# ----------------------------------------------------------------------------- kubernetes
def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert {"name": "raftlog", "newTag": "dev"} in kustomization.get("images", [])


def test_k8s_kinds_and_wiring() -> None:
    objects = load_k8s()
    kinds = sorted(k for k, _ in objects)
    assert kinds == ["Namespace", "PodDisruptionBudget", "Service", "Service", "StatefulSet"]

    sts = one(objects, "StatefulSet")
    spec = sts["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 3
    assert matches(spec["selector"]["matchLabels"], pod_labels)

    services = [o for (k, _), o in objects.items() if k == "Service"]
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    assert len(headless) == 1, "exactly one headless Service"
    headless_svc = headless[0]
    assert spec["serviceName"] == headless_svc["metadata"]["name"]
    # Peers must resolve each other before any pod is ready (the quorum forms first).
    assert headless_svc["spec"].get("publishNotReadyAddresses") is True
    for svc in services:
        assert matches(svc["spec"]["selector"], pod_labels), svc["metadata"]["name"]
        assert [p["port"] for p in svc["spec"]["ports"]] == [GRPC_PORT]
    client = [s for s in services if s is not headless_svc][0]
    assert client["spec"].get("type", "ClusterIP") == "ClusterIP"

    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    assert matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)


def sts_container() -> tuple[dict[str, Any], dict[str, Any]]:
    sts = one(load_k8s(), "StatefulSet")
    containers = sts["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return sts, containers[0]


def test_k8s_probes_ports_storage_and_shutdown() -> None:
    sts, container = sts_container()
    pod = sts["spec"]["template"]["spec"]
    assert container["image"].split(":")[0] == "raftlog"
    assert container.get("imagePullPolicy") in ("IfNotPresent", "Never")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": GRPC_PORT}
    # Readiness/liveness from the node's grpc.health.v1 service (native grpc probes).
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == GRPC_PORT, probe
    # Controlled shutdown gets time before SIGKILL; tini forwards SIGTERM.
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert container["command"][:2] == ["/usr/bin/tini", "--"]
    # Resources are set; memory is bounded.
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    assert container["resources"]["limits"]["memory"]
    # The data directory lives on the PVC of the volumeClaimTemplate.
    templates = {t["metadata"]["name"]: t for t in sts["spec"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert "data" in templates and mounts["data"] == DATA_MOUNT
    assert templates["data"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert templates["data"]["spec"]["resources"]["requests"]["storage"]
    assert f"--data-dir={DATA_MOUNT}/" in container["args"][0]
    # Non-root as the image's user; the volume group-owned by it.
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == UID and security["fsGroup"] == UID
    # The env the script reads agrees with the object it runs in.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REPLICAS"] == str(sts["spec"]["replicas"])
    assert env["STATEFULSET_NAME"] == sts["metadata"]["name"]
    assert env["SERVICE_NAME"] == sts["spec"]["serviceName"]
    downward = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert downward == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs /bin/sh")
def test_k8s_entrypoint_derives_node_id_and_voters(tmp_path: Path) -> None:
    sts, container = sts_container()
    assert container["command"][2:] == ["/bin/sh", "-c"]
    script = container["args"][0]
    # Kubernetes expands $(VAR) in args for variables it defines: none may be hit.
    names = {e["name"] for e in container["env"]}
    assert not [ref for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", script) if ref in names]
    fake = tmp_path / "raftlog"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    env_values = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    domain = f"raftlog-headless.ns1.svc.{env_values['CLUSTER_DOMAIN']}"
    voters = ",".join(f"{i + 1}@raftlog-{i}.{domain}:{GRPC_PORT}" for i in range(3))
    for ordinal in range(3):
        env = {**env_values, "POD_NAME": f"raftlog-{ordinal}", "POD_NAMESPACE": "ns1",
               "PATH": f"{tmp_path}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        out = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        args = out.stdout.splitlines()
        config = node_config(args)
        assert config.node_id == ordinal + 1
        assert ",".join(f"{v.node_id}@{v.host}:{v.port}" for v in config.voters) == voters
        assert config.inter_broker_listener == "INTERNAL"
        assert [(x.name, x.host, x.port) for x in config.listeners] == [("INTERNAL", "0.0.0.0", GRPC_PORT)]
        # It advertises its own voter address: peers and clients dial the stable name.
        me = config.voter(config.node_id)
        assert (config.advertised_host, config.advertised_port) == (me.host, me.port)
        assert str(config.data_dir).startswith(DATA_MOUNT + "/")
    bad = subprocess.run(["sh", "-c", script], env={**env_values, "POD_NAME": "raftlog", "POD_NAMESPACE": "ns1",
                                                     "PATH": f"{tmp_path}:/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0 and "node id" in bad.stderr


# ----------------------------------------------------------------------------- compose
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "compose.yaml").read_text())  # merges the x-node anchor
    assert isinstance(doc, dict)
    return doc


def test_compose_three_nodes_with_named_volumes_and_loopback_ports() -> None:
    doc = compose()
    services = doc["services"]
    assert sorted(services) == ["node1", "node2", "node3"]
    assert set(doc["volumes"]) == {"node1-data", "node2-data", "node3-data"}
    networks = doc["networks"]
    assert len(networks) == 1
    (network,) = networks
    assert networks[network].get("driver", "bridge") == "bridge"  # user-defined: DNS by service name
    for i in (1, 2, 3):
        svc = services[f"node{i}"]
        assert svc["image"] == "raftlog:dev"
        assert svc["networks"] == [network]
        assert svc["volumes"] == [f"node{i}-data:{DATA_MOUNT}"]
        assert svc["ports"] == [f"127.0.0.1:{9090 + i}:19091"]
        assert svc["healthcheck"]["test"][:2] == ["CMD", "raftlog-healthcheck"]
        grace = svc["stop_grace_period"]
        assert grace.endswith("s") and int(grace[:-1]) >= 10
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"


def test_compose_listeners_are_consistent() -> None:
    services = compose()["services"]
    voter_sets = set()
    for i in (1, 2, 3):
        svc = services[f"node{i}"]
        config = node_config(svc["command"])
        voter_sets.add(tuple((v.node_id, v.host, v.port) for v in config.voters))
        assert config.node_id == i
        assert config.inter_broker_listener == "INTERNAL"
        listeners = {x.name: (x.host, x.port) for x in config.listeners}
        advertised = {x.name: (x.host, x.port) for x in config.advertised_listeners}
        assert listeners == {"INTERNAL": ("0.0.0.0", 9091), "EXTERNAL": ("0.0.0.0", 19091)}
        # Containers dial each other by service name on the INTERNAL listener; that is
        # also this node's voter address.
        assert advertised["INTERNAL"] == (f"node{i}", listeners["INTERNAL"][1])
        me = config.voter(i)
        assert (me.host, me.port) == advertised["INTERNAL"]
        # The host reaches EXTERNAL through the published port: what it is told must be
        # the host side of that mapping, and the container side must be the listener.
        host_ip, host_port, container_port = svc["ports"][0].split(":")
        assert advertised["EXTERNAL"] == (host_ip, int(host_port))
        assert int(container_port) == listeners["EXTERNAL"][1]
        assert str(config.data_dir).startswith(DATA_MOUNT + "/")
    assert len(voter_sets) == 1, "every node must be given the same voters"
    assert voter_sets.pop() == ((1, "node1", 9091), (2, "node2", 9091), (3, "node3", 9091))


# ----------------------------------------------------------------------------- image
def test_dockerfile_shape() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.M)
    assert re.search(r"^ENTRYPOINT \[\"/usr/bin/tini\", \"--\", \"raftlog\"\]$", text, re.M)
    assert re.search(r"^USER raftlog", text, re.M) and f"--uid {UID}" in text
    assert f'VOLUME ["{DATA_MOUNT}"]' in text
    assert "--no-index" in text  # offline install: nothing is downloaded in the build
    # The dependencies are installed in a layer before the project's wheel.
    assert text.index("COPY deps/") < text.index("COPY app/")
    out = subprocess.run(["sh", str(DEPLOY / "base" / "build.sh"), "--print-tag"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and re.fullmatch(r"raftlog-base:[a-z]+-py3\d+-v\d+\n", out.stdout), out
