"""`raftlog topic ...`: create, list, describe, delete — shaped like kafka-topics."""

from __future__ import annotations

import json

import click
import grpc

from raftlog.cli.common import bootstrap_option, bootstrap_servers, call_any, fail
from raftlog.errors import KafkaError
from raftlog.v1 import admin_pb2, admin_pb2_grpc


@click.group()
def topic() -> None:
    """Create, list, describe and delete topics."""


def _parse_configs(pairs: tuple[str, ...]) -> dict[str, str]:
    configs: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--config {pair!r}: expected KEY=VALUE")
        configs[key] = value
    return configs


def _admin(servers: list[str], method: str, request: object, timeout_s: float = 10.0) -> object:
    def ask(channel: grpc.Channel) -> object:
        return getattr(admin_pb2_grpc.AdminStub(channel), method)(request, timeout=timeout_s)

    return call_any(servers, ask)


def description_json(desc: admin_pb2.TopicDescription) -> dict[str, object]:
    return {
        "name": desc.name,
        "topic_id": desc.topic_id,
        "configs": dict(sorted(desc.configs.items())),
        "partitions": [
            {
                "partition": p.partition,
                "leader": p.leader,
                "leader_epoch": p.leader_epoch,
                "replicas": list(p.replicas),
                "isr": list(p.isr),
            }
            for p in desc.partitions
        ],
    }


@topic.command()
@click.argument("name")
@click.option("--partitions", default=1, show_default=True, type=int, help="Number of partitions.")
@click.option("--replication-factor", default=1, show_default=True, type=int, help="Replicas per partition.")
@click.option("--config", "configs", multiple=True, metavar="KEY=VALUE",
              help="A topic config (Kafka's names, e.g. min.insync.replicas=2); repeatable.")
@click.option("--if-not-exists", is_flag=True, help="Succeed quietly when the topic exists.")
@bootstrap_option
def create(name: str, partitions: int, replication_factor: int, configs: tuple[str, ...],
           if_not_exists: bool, bootstrap_server: str | None) -> None:
    """Create topic NAME."""
    request = admin_pb2.CreateTopicRequest(
        name=name, partitions=partitions, replication_factor=replication_factor, configs=_parse_configs(configs)
    )
    try:
        response = _admin(bootstrap_servers(bootstrap_server), "CreateTopic", request)
    except KafkaError as err:
        if if_not_exists and err.code.name == "TOPIC_ALREADY_EXISTS":
            return
        fail(str(err))
        return
    assert isinstance(response, admin_pb2.CreateTopicResponse)
    click.echo(f"Created topic {name} (id {response.topic.topic_id}, {partitions} partitions, "
               f"replication factor {replication_factor}).")


@topic.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of names.")
@bootstrap_option
def list_(as_json: bool, bootstrap_server: str | None) -> None:
    """List topic names."""
    try:
        response = _admin(bootstrap_servers(bootstrap_server), "ListTopics", admin_pb2.ListTopicsRequest())
    except KafkaError as err:
        fail(str(err))
        return
    assert isinstance(response, admin_pb2.ListTopicsResponse)
    if as_json:
        click.echo(json.dumps(list(response.names)))
    else:
        for name in response.names:
            click.echo(name)


@topic.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@bootstrap_option
def describe(name: str, as_json: bool, bootstrap_server: str | None) -> None:
    """Partitions (leader, epoch, replicas, ISR) and configs of topic NAME."""
    try:
        desc = _admin(bootstrap_servers(bootstrap_server), "DescribeTopic", admin_pb2.DescribeTopicRequest(name=name))
    except KafkaError as err:
        fail(str(err))
        return
    assert isinstance(desc, admin_pb2.TopicDescription)
    view = description_json(desc)
    if as_json:
        click.echo(json.dumps(view))
        return
    configs = ",".join(f"{k}={v}" for k, v in sorted(desc.configs.items()))
    click.echo(f"Topic: {desc.name}\tTopicId: {desc.topic_id}\tPartitionCount: {len(desc.partitions)}\t"
               f"ReplicationFactor: {len(desc.partitions[0].replicas) if desc.partitions else 0}\tConfigs: {configs}")
    for p in desc.partitions:
        leader = p.leader if p.leader >= 0 else "none"
        click.echo(f"\tTopic: {desc.name}\tPartition: {p.partition}\tLeader: {leader}\tLeaderEpoch: {p.leader_epoch}\t"
                   f"Replicas: {','.join(map(str, p.replicas))}\tIsr: {','.join(map(str, p.isr))}")


@topic.command()
@click.argument("name")
@bootstrap_option
def delete(name: str, bootstrap_server: str | None) -> None:
    """Delete topic NAME and its data on every node."""
    try:
        _admin(bootstrap_servers(bootstrap_server), "DeleteTopic", admin_pb2.DeleteTopicRequest(name=name))
    except KafkaError as err:
        fail(str(err))
        return
    click.echo(f"Deleted topic {name}.")


@topic.command(name="alter-config")
@click.argument("name")
@click.option("--set", "set_", multiple=True, metavar="KEY=VALUE", help="Set a config; repeatable.")
@click.option("--delete", "delete_", multiple=True, metavar="KEY", help="Reset a config to its default; repeatable.")
@bootstrap_option
def alter_config(name: str, set_: tuple[str, ...], delete_: tuple[str, ...], bootstrap_server: str | None) -> None:
    """Change configs of topic NAME (Kafka's incremental alter)."""
    request = admin_pb2.AlterConfigsRequest(topic=name, set=_parse_configs(set_), delete=list(delete_))
    try:
        response = _admin(bootstrap_servers(bootstrap_server), "AlterConfigs", request)
    except KafkaError as err:
        fail(str(err))
        return
    assert isinstance(response, admin_pb2.AlterConfigsResponse)
    click.echo(json.dumps(dict(sorted(response.configs.items()))))
