"""The lifecycle's anonymous ReactivateWithLink and InspectReactivationLink with tokens that are no link's: refused
INVALID_ARGUMENT or NOT_FOUND, never INTERNAL, and never repeating much of what was sent.
(Links that work, and the door of every method: test_security.py.)"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from cumulo.lifecycle.v1 import lifecycle_pb2 as pb
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.testing import expect_error, open_channel, rpc, with_client_id
from cumulo_sdk import Cumulo


@pytest.fixture(scope="module")
async def stub(gateway: str) -> AsyncIterator[lifecycle_pb2_grpc.LifecycleServiceStub]:
    """LifecycleService through the gateway, with nothing added to the calls."""
    async with open_channel(gateway) as channel:
        yield lifecycle_pb2_grpc.LifecycleServiceStub(channel)


@pytest.mark.parametrize(
    "token, code",
    [
        ("", grpc.StatusCode.INVALID_ARGUMENT),
        ("a" * 201, grpc.StatusCode.INVALID_ARGUMENT),
        ("ü" * 201, grpc.StatusCode.INVALID_ARGUMENT),
        ("x" * 1_000_000, grpc.StatusCode.INVALID_ARGUMENT),
        ("a" * 200, grpc.StatusCode.NOT_FOUND),
        ("ü" * 200, grpc.StatusCode.NOT_FOUND),
        (" ", grpc.StatusCode.NOT_FOUND),
        ("\x00", grpc.StatusCode.NOT_FOUND),
        ("not-a-link", grpc.StatusCode.NOT_FOUND),
        ("' OR '1'='1' --", grpc.StatusCode.NOT_FOUND),
        ("%00%27", grpc.StatusCode.NOT_FOUND),
        ("../../../etc/passwd", grpc.StatusCode.NOT_FOUND),
        ("🙂" * 50, grpc.StatusCode.NOT_FOUND),
        ("\u202e\ufeff\ud7ff", grpc.StatusCode.NOT_FOUND),
        (str(uuid.uuid4()), grpc.StatusCode.NOT_FOUND),
        (secrets.token_urlsafe(32), grpc.StatusCode.NOT_FOUND),
    ],
    ids=[
        "empty", "201-chars", "201-non-ascii", "a-megabyte", "200-chars", "200-non-ascii", "space", "nul", "word",
        "sql", "percent-escapes", "path", "emoji", "bidi-and-bom", "uuid", "well-formed-but-unknown",
    ],
)
async def test_a_bad_link_token_is_invalid_or_not_found_never_internal(stub, token, code):
    for call in (
        rpc(stub.ReactivateWithLink, pb.ReactivateWithLinkRequest(token=token), metadata=with_client_id()),
        rpc(stub.InspectReactivationLink, pb.InspectReactivationLinkRequest(token=token), metadata=with_client_id()),
    ):
        err = await expect_error(call, code)
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            assert err.field == "token", err
        else:
            assert err.reason == "LINK_INVALID", err
        assert len(err.message) < 300 and "Traceback" not in err.message


async def test_a_bad_link_token_through_the_sdk_is_the_same(gateway):
    async with Cumulo(gateway) as anonymous:
        await expect_error(anonymous.reactivate_with_link("a" * 201), grpc.StatusCode.INVALID_ARGUMENT, field="token")
        await expect_error(anonymous.reactivate_with_link("garbage"), grpc.StatusCode.NOT_FOUND, reason="LINK_INVALID")
