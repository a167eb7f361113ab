"""Raft-level errors of the driver. They know nothing of Kafka: the controller and
the gRPC layer translate them to Kafka error codes (node/controller/errors.py)."""

from __future__ import annotations


class QuorumError(Exception):
    """Base class of the driver's errors."""


class NotLeaderError(QuorumError):
    """This node is not the Raft leader (or stopped being it before a proposal
    committed); carries the leader this node knows (0: none) and its address."""

    def __init__(self, message: str, leader_id: int = 0, leader_address: str = "") -> None:
        super().__init__(message)
        self.leader_id = leader_id
        self.leader_address = leader_address


class QuorumTimeoutError(QuorumError):
    """Not committed (or not confirmed) in time; a proposal may still commit."""


class DriverStoppedError(QuorumError):
    """The driver is stopping or died."""

    def __init__(self, message: str = "the node is shutting down") -> None:
        super().__init__(message)


class InvalidProposalError(QuorumError):
    """A proposal the log cannot take (e.g. no entries)."""
