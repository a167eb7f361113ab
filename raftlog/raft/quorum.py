"""Majority arithmetic over a fixed voter set."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def quorum_size(voters: Collection[int]) -> int:
    return len(voters) // 2 + 1


def committed_index(voters: Collection[int], match: Mapping[int, int]) -> int:
    """The highest index that a majority of ``voters`` has (missing voters count as 0)."""
    acked = sorted((match.get(v, 0) for v in voters), reverse=True)
    return acked[quorum_size(voters) - 1]


def vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    granted = sum(1 for v in voters if votes.get(v) is True)
    rejected = sum(1 for v in voters if votes.get(v) is False)
    q = quorum_size(voters)
    if granted >= q:
        return VoteResult.WON
    # Lost once the rest could not reach a majority even if all granted.
    if len(voters) - rejected < q:
        return VoteResult.LOST
    return VoteResult.PENDING


def has_quorum(voters: Collection[int], members: Collection[int]) -> bool:
    return sum(1 for v in voters if v in members) >= quorum_size(voters)
