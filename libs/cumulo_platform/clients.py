"""Registered client apps (SPEC R3.2): every public call names one; unknown ones are refused.

Services ask auth's registry once and keep the answer for a while.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc

Lookup = Callable[[str], Awaitable[bool]]


class ClientRegistry:
    """Caches `is this client id registered and enabled` answers from a lookup."""

    def __init__(self, lookup: Lookup, *, ttl: float = 300.0, negative_ttl: float = 10.0) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._answers: dict[str, tuple[bool, float]] = {}

    async def is_registered(self, client_id: str) -> bool:
        cached = self._answers.get(client_id)
        now = time.monotonic()
        if cached is not None and now < cached[1]:
            return cached[0]
        registered = await self._lookup(client_id)
        if len(self._answers) > 10_000:
            self._answers.clear()
        self._answers[client_id] = (registered, now + (self._ttl if registered else self._negative_ttl))
        return registered

    def forget(self, client_id: str) -> None:
        self._answers.pop(client_id, None)


def remote_lookup(channel: grpc.aio.Channel) -> Lookup:
    stub = auth_pb2_grpc.AuthInternalServiceStub(channel)

    async def lookup(client_id: str) -> bool:
        try:
            response = await stub.GetClientApp(auth_pb2.GetClientAppRequest(client_id=client_id), timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return response.enabled

    return lookup
