"""Jepsen-style chaos for raftlog (issue 5, items 3-5).

``python -m tests.chaos --help`` runs a workload of idempotent acks=all producers and
consumers against a cluster (node processes or containers) while a seeded nemesis
kills, pauses and isolates nodes; at the end it heals everything and checks the
history: nothing acknowledged lost or moved, nothing unsent, no duplicates, per-producer
order, replicas byte-identical below the high watermark, metadata images identical.

Modules: ``history`` (what the workload did), ``checker`` (pure checks over it),
``workload`` (raw-gRPC idempotent producer and consumers), ``netfilter`` (cutting a
node process off the network), ``drivers`` (processes / containers), ``nemesis``
(the fault schedule and failover timing), ``runner`` (the whole run and its summary).
"""
