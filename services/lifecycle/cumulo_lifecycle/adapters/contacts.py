"""Contact methods come from auth, the owner of accounts: the events only say that they
changed (no personal data on the bus), and the lifecycle asks for the values then, keeping
its own copy for notices, including the last one after the account is gone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc

# account id -> (email, phone, locale), or None when auth knows no such account.
ContactLookup = Callable[[str], Awaitable[tuple[str, str, str] | None]]


def remote_contacts(channel: grpc.aio.Channel) -> ContactLookup:
    stub = auth_pb2_grpc.AuthInternalServiceStub(channel)

    async def lookup(account_id: str) -> tuple[str, str, str] | None:
        try:
            response = await stub.GetAccountContacts(auth_pb2.GetAccountContactsRequest(account_id=account_id), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return response.email, response.phone, response.locale

    return lookup
