"""gRPC calls that raise the SDK's CumuloRpcError, the assertion that one fails as it should,
and all that an error says (where no secret may appear)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from cumulo_devstack.testing.channels import open_channel
from cumulo_platform.errors import STATUS_DETAILS_KEY
from cumulo_sdk import Cumulo, CumuloRpcError


async def rpc(
    method: Callable[..., Awaitable[Any]], request: Any, *, metadata: Sequence[tuple[str, str]] | None = None, timeout: float = 20
) -> Any:
    """A unary call whose failure is raised as a CumuloRpcError (code, reason, field ...)."""
    try:
        return await method(request, metadata=metadata, timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


def fake_client_address() -> str:
    """A made-up client address (IPv6 documentation range) no other call uses."""
    return f"2001:db8:{secrets.token_hex(2)}::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


async def call(
    client: Cumulo, method: Callable[..., Awaitable[Any]], request: Any, token: str | None = None, *, address: str | None = None,
    timeout: float = 20,
) -> Any:
    """Call `method` with the client's client id, `token` if given, and `address` (a fresh
    fake one if not) in x-forwarded-for.

    The per-address login throttle counts the client address; every call made straight to a
    service without one comes from 127.0.0.1, which the whole session shares."""
    metadata = client.metadata(token) + [("x-forwarded-for", address or fake_client_address())]
    return await rpc(method, request, metadata=metadata, timeout=timeout)


async def expect_error(
    awaitable: Awaitable[object], code: grpc.StatusCode, reason: str | None = None, field: str | None = None
) -> CumuloRpcError:
    """Await `awaitable`, which must fail with `code` (and `reason`, `field` when given)."""
    with pytest.raises(CumuloRpcError) as info:
        await awaitable
    err = info.value
    assert err.code == code, err
    if reason is not None:
        assert err.reason == reason, err
    if field is not None:
        assert err.field == field, err
    return err


async def bare_rpc_error(
    target: str, stub_class: Callable[[grpc.aio.Channel], Any], method: str, request: Any, *,
    metadata: Sequence[tuple[str, str]] | None = None, timeout: float = 10,
) -> grpc.aio.AioRpcError:
    """The grpc.aio.AioRpcError that a call through a bare stub (no SDK, so no client id unless
    `metadata` has one) to `target` must fail with."""
    async with open_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(stub_class(channel), method)(request, metadata=metadata, timeout=timeout)
    return caught.value


def everything_said(exc: grpc.aio.AioRpcError) -> str:
    """An error's message, trailing metadata and every detail of its status, as text: where
    a secret (token, receipt, position) must not appear."""
    parts = [exc.details() or ""]
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            parts.append(status.message)
            for detail in status.details:
                for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
                    unpacked = kind()
                    if detail.Unpack(unpacked):
                        parts.append(str(unpacked))
        else:
            parts.append(f"{key}={value!r}")
    return "\n".join(parts)
