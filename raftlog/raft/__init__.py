"""A pure Raft state machine in the shape of etcd's raft: no I/O, no threads, no clock.

Time enters through ``tick()``, messages through ``step()``, and the core hands the
driver a ``Ready`` to carry out and acknowledge with ``advance()``.
"""
