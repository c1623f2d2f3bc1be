"""Looking accounts up in auth (sharing with a user by e-mail or phone)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_platform.errors import InvalidArgument, NotFound


def remote_find_account(channel: grpc.aio.Channel) -> Callable[[str], Awaitable[str]]:
    stub = auth_pb2_grpc.AuthInternalServiceStub(channel)

    async def find(login: str) -> str:
        try:
            return (await stub.FindAccount(auth_pb2.FindAccountRequest(login=login), timeout=5)).account_id
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(
                    "recipient: no cumulo account has this e-mail or phone", reason="RECIPIENT_NOT_FOUND",
                    metadata={"field": "recipient"},
                ) from None
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument("recipient", "must be an e-mail address or an E.164 phone number") from None
            raise

    return find
