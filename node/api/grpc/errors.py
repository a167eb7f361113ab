"""One error policy for every servicer method.

A ``KafkaError`` becomes a gRPC status carrying a ``raftlog.v1.ErrorInfo`` (a
Raft driver error is first translated to one); any other exception is logged
with its traceback and answered UNKNOWN_SERVER_ERROR,
so a bad request or a bug fails one call and never the node.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc.aio
from grpc_status import rpc_status
from structlog.typing import FilteringBoundLogger

from raftlog.node.controller.errors import controller_error
from raftlog.node.quorum.errors import QuorumError
from raftlog.errors import ErrorCode, ErrorInfo, KafkaError
from raftlog.status import to_rpc_status

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class HasLogger(Protocol):
    logger: FilteringBoundLogger


S = TypeVar("S", bound=HasLogger)


async def abort_with(context: Any, error: ErrorInfo) -> None:
    await context.abort_with_status(rpc_status.to_status(to_rpc_status(error)))


def rpc_method(
    method: Callable[[S, Req, Any], Awaitable[Resp]],
) -> Callable[[S, Req, Any], Awaitable[Resp]]:
    """Wrap an async servicer method with the error policy above."""

    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: Any) -> Resp:
        try:
            return await method(self, request, context)
        except KafkaError as exc:
            await abort_with(context, exc.info)
        except QuorumError as exc:
            await abort_with(context, controller_error(exc).info)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001 - a servicer never crashes the node
            self.logger.error("request failed unexpectedly", method=method.__name__,
                           error=repr(exc), exc_info=True)
            await abort_with(
                context,
                ErrorInfo(ErrorCode.UNKNOWN_SERVER_ERROR, f"{type(exc).__name__}: {exc}"),
            )
        raise AssertionError("abort_with_status returned")  # pragma: no cover

    return wrapper
