"""Calls to another cumulo service's internal API, all alike: one channel per service (from the
service registry and settings), deadlines from settings, one error policy, and never inside an
open unit of work.

The error policy (`errors.relayed`): a missing thing, a refused state or a refusal keeps its
code, reason and message; bad input is named as our caller's field; a service that does not
answer in time is UNAVAILABLE `<SERVICE>_UNAVAILABLE` (the caller may retry); anything else is
INTERNAL `<SERVICE>_FAILED`. A call carries the current trace context (cumulo_platform.tracing)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import grpc

from cumulo_platform.db import assert_no_open_unit_of_work
from cumulo_platform.errors import relayed
from cumulo_platform.tracing import outgoing_metadata

Stub = TypeVar("Stub")
Response = TypeVar("Response")


class Remote(Generic[Stub]):
    """`await remote.call(remote.stub.Method, request)`; `remote.stream(...)` for a
    server-streaming method."""

    def __init__(self, service: str, stub: Stub, *, deadline: float, bulk_deadline: float) -> None:
        self.service = service
        self.stub = stub
        self.deadline = deadline
        self.bulk_deadline = bulk_deadline

    def _timeout(self, bulk: bool) -> float:
        return self.bulk_deadline if bulk else self.deadline

    async def call(
        self,
        method: Callable[..., Awaitable[Response]],
        request: Any,
        *,
        field: str = "request",
        bulk: bool = False,
    ) -> Response:
        """One unary call. `field` names the caller's input that bad input from the other
        service is blamed on; `bulk` gives a call that walks a whole account the longer deadline."""
        assert_no_open_unit_of_work(f"{self.service}.{_name(method)}")
        try:
            return await method(request, timeout=self._timeout(bulk), metadata=outgoing_metadata())
        except grpc.aio.AioRpcError as exc:
            raise relayed(exc, self.service, field) from None

    async def stream(
        self,
        method: Callable[..., Any],
        request: Any,
        *,
        field: str = "request",
        bulk: bool = True,
    ) -> AsyncIterator[Any]:
        assert_no_open_unit_of_work(f"{self.service}.{_name(method)}")
        try:
            async for item in method(request, timeout=self._timeout(bulk), metadata=outgoing_metadata()):
                yield item
        except grpc.aio.AioRpcError as exc:
            raise relayed(exc, self.service, field) from None


def _name(method: Callable[..., Any]) -> str:
    # grpc's multi-callables carry the full method path as bytes or str.
    path = getattr(method, "_method", b"")
    if isinstance(path, bytes):
        path = path.decode(errors="replace")
    return str(path).rsplit("/", 1)[-1] or "call"
