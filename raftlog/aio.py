"""raftlog's asyncio client: ``AIOProducer``, ``AIOConsumer``, ``AIOAdminClient``.

The same implementation as the blocking ``raftlog.Producer``/``Consumer``/
``AdminClient`` (they run it on a private loop thread); here it runs on the
caller's event loop::

    from raftlog.aio import AIOProducer

    async with AIOProducer(bootstrap_servers="localhost:9092") as producer:
        metadata = await producer.send_and_wait("orders", b"hello", key=b"k")
"""

from __future__ import annotations

from raftlog.client.aio_admin import AIOAdminClient
from raftlog.client.aio_consumer import AIOConsumer
from raftlog.client.aio_producer import AIOProducer

__all__ = ["AIOAdminClient", "AIOConsumer", "AIOProducer"]
