"""Contact methods come from auth, the owner of accounts: the events only say that they
changed (no personal data on the bus), and the lifecycle asks for the values then (after the
event's unit of work, see accounts.py), keeping its own copy for notices, including the last
one after the account is gone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_platform.errors import NotFound
from cumulo_platform.remote import Remote

# account id -> (email, phone, locale), or None when auth knows no such account.
ContactLookup = Callable[[str], Awaitable[tuple[str, str, str] | None]]


def remote_contacts(auth: Remote[auth_pb2_grpc.AuthInternalServiceStub]) -> ContactLookup:
    async def lookup(account_id: str) -> tuple[str, str, str] | None:
        try:
            response = await auth.call(
                auth.stub.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id=account_id), field="account_id"
            )
        except NotFound:
            return None
        return response.email, response.phone, response.locale

    return lookup
