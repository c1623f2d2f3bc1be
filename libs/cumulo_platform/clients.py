"""Registered client apps (§3.1.5: only authorised clients): every public call names one; unknown ones are refused.

Services ask auth's registry once and keep the answer for a while.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_platform.errors import NotFound
from cumulo_platform.remote import Remote

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


def remote_lookup(auth: Remote[auth_pb2_grpc.AuthInternalServiceStub]) -> Lookup:
    async def lookup(client_id: str) -> bool:
        try:
            response = await auth.call(auth.stub.GetClientApp, auth_pb2.GetClientAppRequest(client_id=client_id))
        except NotFound:
            return False
        return response.enabled

    return lookup
