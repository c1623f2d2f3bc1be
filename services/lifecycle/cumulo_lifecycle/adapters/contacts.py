"""Contact methods come from auth, the owner of accounts: the events only say that they
changed (no personal data on the bus), and the lifecycle asks for the values then (after the
event's unit of work, see accounts.py), keeping its own copy for notices, including the last
one after the account is gone."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_platform.errors import NotFound
from cumulo_platform.remote import Remote


@dataclasses.dataclass(frozen=True)
class Contacts:
    """An account's verified contacts and language; for a minor, also their guardian's
    verified contacts, until the guardian's access ends (the minor's coming of age)."""

    email: str
    phone: str
    locale: str
    guardian_email: str = ""
    guardian_phone: str = ""
    guardian_until: dt.datetime | None = None


# account id -> its contacts, or None when auth knows no such account.
ContactLookup = Callable[[str], Awaitable[Contacts | None]]


def remote_contacts(auth: Remote[auth_pb2_grpc.AuthInternalServiceStub]) -> ContactLookup:
    async def lookup(account_id: str) -> Contacts | None:
        try:
            response = await auth.call(
                auth.stub.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id=account_id), field="account_id"
            )
        except NotFound:
            return None
        until = response.guardian_until.ToDatetime(tzinfo=dt.UTC) if response.HasField("guardian_until") else None
        return Contacts(response.email, response.phone, response.locale, response.guardian_email, response.guardian_phone, until)

    return lookup
