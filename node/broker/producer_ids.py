"""Producer ids for InitProducerId, handed out from blocks the active controller
allocates (KIP-730: the controller commits a ProducerIdsRecord per block, so no id is
ever given out twice, even across controller failovers)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from raftlog.errors import ErrorCode, KafkaError

#: () -> (first id of a fresh block, block size), from the active controller.
AllocateProducerIds = Callable[[], Awaitable[tuple[int, int]]]

MAX_PRODUCER_EPOCH = 0x7FFF - 1  # Kafka bumps to a new producer id before Short.MAX_VALUE


class ProducerIdManager:
    def __init__(self, allocate: AllocateProducerIds) -> None:
        self._allocate = allocate
        self._next = 0
        self._end = 0
        self._lock = asyncio.Lock()

    async def next_id(self) -> int:
        async with self._lock:  # one block request at a time
            if self._next >= self._end:
                first, count = await self._allocate()
                if first < 0 or count <= 0:
                    raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, f"bad producer id block {first}+{count}")
                self._next, self._end = first, first + count
            pid = self._next
            self._next += 1
            return pid

    async def init_producer_id(self, producer_id: int, producer_epoch: int) -> tuple[int, int]:
        """A new id (epoch 0) for a new producer; a bumped epoch for a known one
        (KIP-360), and a fresh id once the epoch would overflow."""
        if producer_id < 0 and producer_epoch < 0:
            return await self.next_id(), 0
        if producer_id < 0 or producer_epoch < 0:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                f"producer id {producer_id} and epoch {producer_epoch}: give both, or -1 for both",
            )
        if producer_epoch >= MAX_PRODUCER_EPOCH:
            return await self.next_id(), 0
        return producer_id, producer_epoch + 1
