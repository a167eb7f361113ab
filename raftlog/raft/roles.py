"""The one place that changes a node's role, with the table of legal transitions."""

from __future__ import annotations

from raftlog.raft.types import Role


class IllegalTransitionError(RuntimeError):
    """A role change Raft never makes; it means a bug in the core."""


#: role -> roles it may become. Staying a follower is a transition too (new term or
#: new leader); a candidate whose election timed out starts over (pre-vote first
#: if enabled); only a candidate can become leader, and a leader only steps down.
LEGAL_TRANSITIONS: dict[Role, frozenset[Role]] = {
    Role.FOLLOWER: frozenset({Role.FOLLOWER, Role.PRE_CANDIDATE, Role.CANDIDATE}),
    Role.PRE_CANDIDATE: frozenset(
        {Role.FOLLOWER, Role.PRE_CANDIDATE, Role.CANDIDATE}
    ),
    Role.CANDIDATE: frozenset(
        {Role.FOLLOWER, Role.PRE_CANDIDATE, Role.CANDIDATE, Role.LEADER}
    ),
    Role.LEADER: frozenset({Role.FOLLOWER}),
}


class RoleMachine:
    __slots__ = ("_role",)

    def __init__(self) -> None:
        self._role = Role.FOLLOWER

    @property
    def role(self) -> Role:
        return self._role

    def transition(self, to: Role) -> None:
        if to not in LEGAL_TRANSITIONS[self._role]:
            raise IllegalTransitionError(f"illegal role transition {self._role.value} -> {to.value}")
        self._role = to
