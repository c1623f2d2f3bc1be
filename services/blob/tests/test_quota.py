"""Quota, against a blob service of this module's own whose free quota is 20 MiB: an upload
that does not fit is refused before any byte flows, concurrent reservations never add up to
more than the quota, held content costs nothing more, and emptying the trash gives space back."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from collections.abc import AsyncIterator

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2
from cumulo_blob import bootstrap as blob_bootstrap
from cumulo_blob.config import BlobSettings
from cumulo_devstack.testing import expect_error, start_service
from cumulo_sdk import CumuloRpcError

from .conftest import MIB

QUOTA = 20 * MIB


@pytest.fixture(scope="module")
async def small_blob(infra, auth) -> AsyncIterator[str]:
    """A second blob service (own database, same auth, NATS and S3) with a 20 MiB quota."""
    settings = BlobSettings.from_env(
        infra.service_environ(CUMULO_AUTH_TARGET=auth.target, CUMULO_BLOB_FREE_QUOTA_BYTES=str(QUOTA))
    )
    app = await blob_bootstrap.build(settings)
    port = await start_service(app.runtime)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await app.runtime.stop()


@pytest.fixture
async def member(owners, small_blob):
    """A new account whose client calls the small service directly."""
    return await owners.new(small_blob)


def any_digest() -> str:
    return secrets.token_hex(32)


async def start_sized(owner, size: int, name: str | None = None):
    return await owner.start(name or f"file-{secrets.token_hex(4)}.bin", size=size, sha256=any_digest())


async def test_the_quota_is_reported(member):
    usage = await member.usage()
    assert (usage.used, usage.reserved, usage.quota) == (0, 0, QUOTA)


async def test_an_upload_over_the_quota_is_refused_before_any_byte(member):
    err = await expect_error(start_sized(member, QUOTA + 1), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="QUOTA_EXCEEDED")
    assert err.metadata["quota"] == str(QUOTA)
    usage = await member.usage()
    assert (usage.used, usage.reserved) == (0, 0)
    assert await member.names() == []


async def test_an_upload_of_exactly_the_quota_fits(member):
    started = await start_sized(member, QUOTA)
    assert (await member.usage()).reserved == QUOTA
    await expect_error(start_sized(member, 1), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="QUOTA_EXCEEDED")
    await member.cancel(started.upload_id)
    assert (await member.usage()).reserved == 0


async def test_used_and_reserved_bytes_both_count(member):
    stored = await member.put("stored.bin", os.urandom(6 * MIB))
    pending = await start_sized(member, 10 * MIB)
    err = await expect_error(start_sized(member, 4 * MIB + 1), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="QUOTA_EXCEEDED")
    assert (err.metadata["used"], err.metadata["reserved"]) == (str(6 * MIB), str(10 * MIB))
    last = await start_sized(member, 4 * MIB)  # exactly what is left
    usage = await member.usage()
    assert (usage.used, usage.reserved) == (6 * MIB, 14 * MIB)
    for upload in (pending, last):
        await member.cancel(upload.upload_id)
    assert stored.size == 6 * MIB


async def test_concurrent_starts_at_the_edge_reserve_no_more_than_the_quota(member):
    sizes = [4 * MIB] * 8  # 32 MiB asked for, 20 MiB there: exactly five fit
    results = await asyncio.gather(*(start_sized(member, s) for s in sizes), return_exceptions=True)
    started = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, CumuloRpcError) and r.reason == "QUOTA_EXCEEDED" for r in refused), refused
    assert (len(started), len(refused)) == (5, 3)
    usage = await member.usage()
    assert usage.reserved == 5 * 4 * MIB <= QUOTA
    for upload in started:
        await member.cancel(upload.upload_id)
    assert (await member.usage()).reserved == 0


async def test_concurrent_starts_of_mixed_sizes_never_overbook(member):
    sizes = [7 * MIB, 7 * MIB, 7 * MIB, 5 * MIB, 3 * MIB, 2 * MIB, 1 * MIB]
    results = await asyncio.gather(*(start_sized(member, s) for s in sizes), return_exceptions=True)
    granted = [size for size, r in zip(sizes, results) if not isinstance(r, BaseException)]
    refused = [size for size, r in zip(sizes, results) if isinstance(r, BaseException)]
    assert all(isinstance(r, CumuloRpcError) and r.reason == "QUOTA_EXCEEDED" for r in results if isinstance(r, BaseException))
    assert refused, "33 MiB cannot all fit in 20 MiB"
    assert sum(granted) <= QUOTA
    # Reservations only grew meanwhile: each refused one did not fit beside what was granted.
    assert all(sum(granted) + size > QUOTA for size in refused)
    assert (await member.usage()).reserved == sum(granted)
    for r in results:
        if not isinstance(r, BaseException):
            await member.cancel(r.upload_id)


async def test_content_already_held_costs_no_more_quota(member):
    payload = os.urandom(12 * MIB)
    first = await member.put("big.bin", payload)
    # 12 more MiB would not fit ...
    await expect_error(start_sized(member, 12 * MIB), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="QUOTA_EXCEEDED")
    # ... but the same bytes again cost nothing.
    started = await member.start("copy.bin", payload)
    assert started.HasField("file") and started.file.sha256 == first.sha256
    usage = await member.usage()
    assert (usage.used, usage.reserved) == (12 * MIB, 0)


async def test_completing_an_upload_turns_its_reservation_into_use(member):
    payload = os.urandom(9 * MIB)
    started = await member.start("turned.bin", payload)
    assert (await member.usage()).reserved == 9 * MIB
    await member.send(started.upload_id, 0, payload)
    usage = await member.usage()
    assert (usage.used, usage.reserved) == (9 * MIB, 0)
    assert hashlib.sha256(await member.read((await member.ls())[0].node_id)).hexdigest() == hashlib.sha256(payload).hexdigest()


async def test_space_comes_back_when_the_trash_is_emptied_not_before(member):
    payload = os.urandom(12 * MIB)
    node = await member.put("space.bin", payload)
    await expect_error(start_sized(member, 10 * MIB), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="QUOTA_EXCEEDED")
    await member.delete(node.node_id)
    # In the trash it still takes its space.
    await expect_error(start_sized(member, 10 * MIB), grpc.StatusCode.RESOURCE_EXHAUSTED, reason="QUOTA_EXCEEDED")
    assert (await member.usage()).used == 12 * MIB
    await member.rpc("EmptyTrash", blob_pb2.EmptyTrashRequest())
    assert (await member.usage()).used == 0
    started = await start_sized(member, 10 * MIB)
    assert (await member.usage()).reserved == 10 * MIB
    await member.cancel(started.upload_id)


async def test_a_failed_upload_gives_its_space_back(member):
    payload = os.urandom(15 * MIB)
    started = await member.start("wrong.bin", payload, sha256=any_digest())
    await expect_error(member.send(started.upload_id, 0, payload), grpc.StatusCode.INVALID_ARGUMENT, reason="SHA256_MISMATCH")
    usage = await member.usage()
    assert (usage.used, usage.reserved) == (0, 0)
    second = await start_sized(member, 15 * MIB)
    await member.cancel(second.upload_id)
