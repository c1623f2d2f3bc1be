"""Looking accounts up in auth (sharing with a user by e-mail or phone)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_platform.errors import InvalidArgument, NotFound
from cumulo_platform.remote import Remote

FindAccount = Callable[[str], Awaitable[str]]


def remote_find_account(auth: Remote[auth_pb2_grpc.AuthInternalServiceStub]) -> FindAccount:
    """The account id of a login; the recipient's own words when auth knows none or the login
    is no e-mail address or phone number."""

    async def find(login: str) -> str:
        try:
            found = await auth.call(auth.stub.FindAccount, auth_pb2.FindAccountRequest(login=login), field="recipient")
        except NotFound:
            raise NotFound(
                "recipient: no cumulo account has this e-mail or phone", reason="RECIPIENT_NOT_FOUND",
                metadata={"field": "recipient"},
            ) from None
        except InvalidArgument:
            raise InvalidArgument("recipient", "must be an e-mail address or an E.164 phone number") from None
        return found.account_id

    return find
