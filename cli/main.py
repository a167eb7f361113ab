"""The `raftlog` command line: one click group, one module per command family."""

from __future__ import annotations

import click

from raftlog.cli import loaded


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="raftlog")
def main() -> None:
    """raftlog: a Kafka-style distributed commit log with a built-in Raft metadata quorum."""


def _register() -> None:
    # Imported here so each family stays in its own module and `main` has no cycles.
    from raftlog.cli import cluster, data, node, perf, quorum, topic

    main.add_command(node.node)
    main.add_command(cluster.cluster)
    main.add_command(quorum.quorum)
    main.add_command(perf.perf)
    main.add_command(topic.topic)
    main.add_command(data.produce)
    main.add_command(data.consume)


_register()
loaded()  # Ctrl-C from here on: each command's own handling (see raftlog.cli)
