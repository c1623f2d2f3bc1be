"""An upload stream that ends badly (the client gives up — Ctrl-C in `cumulo files put` — or its
bytes are refused) ends with its own outcome, even when it was cancelled inside one of its own
statements: the writer's lease is let go at once and the upload resumes from where it stood.
(That a stream holds no database connection while it waits is test_blob_abuse's.)"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import eventually, expect_error

from .conftest import MIB, PART, as_rpc_error, sha


class StreamLog:
    """The blob service's log lines of one account's UploadChunks streams, as they come."""

    def __init__(self, debug_logs: Any, account_id: str) -> None:
        self.debug_logs = debug_logs
        self.account_id = account_id
        self.lines: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        for text in self.debug_logs().splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if line.get("account_id") == self.account_id and "UploadChunks" in str(line.get("method")):
                self.lines.append(line)
        return self.lines

    async def ended(self) -> dict[str, Any]:
        """The service's line for the stream's end (its status code), once it has written it."""

        async def end_line() -> dict[str, Any] | None:
            return next((line for line in self.read() if line.get("event") == "rpc"), None)

        line = await eventually(end_line, timeout=30, what="the service's line for the stream's end")
        assert line is not None
        return line


async def let_go(peek: Any, upload_id: str) -> None:
    """The stream's lease is let go: a release cancelled a second time finishes on its own,
    possibly just after the stream's end was logged (cumulo_blob.writer_lock)."""

    async def released() -> bool:
        return not await peek.writer_holds(upload_id)

    await eventually(released, timeout=30, what="the stream to let the upload go")


async def held_stream(
    upload_id: str, payload: bytes, hold: asyncio.Event, then: bytes = b"", *, first: asyncio.Event | None = None
) -> AsyncIterator[blob_pb2.UploadChunksRequest]:
    """The payload in MiB messages (after its first, once `first` is set, if given); then the
    client stays on the line until `hold` is set, and sends `then`."""
    yield blob_pb2.UploadChunksRequest(upload_id=upload_id, offset=0, data=payload[:MIB])
    if first is not None:
        await first.wait()
    for at in range(MIB, len(payload), MIB):
        yield blob_pb2.UploadChunksRequest(data=payload[at : at + MIB])
    await hold.wait()
    if then:
        yield blob_pb2.UploadChunksRequest(data=then)


async def answer(call: Any) -> blob_pb2.UploadChunksResponse:
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        raise as_rpc_error(exc) from None


async def stream_waits_for_the_client(peek: Any, upload_id: str) -> None:
    """Until the stream holds the upload: it has read the upload's row and waits for the next
    message."""

    async def holding() -> bool:
        return await peek.writer_holds(upload_id)

    await eventually(holding, timeout=30, what="the stream to hold the upload")


async def test_a_stream_cancelled_inside_its_own_statement_ends_cancelled_and_resumes(alice, bob, blob, peek, debug_logs):
    payload = os.urandom(3 * PART + 5)
    started = await alice.start("cancelled.bin", payload)
    log = StreamLog(debug_logs, alice.account_id)
    go_on, never = asyncio.Event(), asyncio.Event()
    call = alice.stub.UploadChunks(
        held_stream(started.upload_id, payload[: 2 * PART], never, first=go_on), metadata=await alice.metadata(), timeout=60
    )
    try:
        await stream_waits_for_the_client(peek, started.upload_id)
        async with blob.app.db.engine.connect() as blocker:
            # Another transaction holds the upload's row: the stream's record of its first part
            # (made once a second part is on its way) waits for it.
            await blocker.begin()
            await blocker.execute(
                sa.text("SELECT 1 FROM blob.uploads WHERE upload_id = :u FOR UPDATE"), {"u": uuid.UUID(started.upload_id)}
            )
            blocker_pid = await blocker.scalar(sa.text("SELECT pg_backend_pid()"))
            go_on.set()
            try:

                async def stream_waits_for_the_row() -> bool:
                    return bool(
                        await peek.scalar(
                            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'UPDATE blob.uploads%'"
                            " AND :blocker = ANY(pg_blocking_pids(pid))",
                            blocker=blocker_pid,
                        )
                    )

                await eventually(stream_waits_for_the_row, timeout=30, what="the stream's UPDATE waiting for the row")
                # Meanwhile the service serves everyone else.
                other = os.urandom(PART + 9)
                served = await bob.put("meanwhile.bin", other)
                assert served.sha256 == sha(other)
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                end = await log.ended()
            finally:
                await blocker.rollback()
    finally:
        go_on.set()
        call.cancel()
    assert end["code"] == "CANCELLED", end
    assert not [line for line in log.read() if line.get("level") == "error"], log.read()
    await let_go(peek, started.upload_id)
    # The cancelled statement recorded nothing: the upload resumes from its start, at once.
    status = await alice.get_upload(started.upload_id)
    assert status.committed_offset == 0
    done = await alice.send(started.upload_id, 0, payload)
    assert done.file.sha256 == sha(payload)
    assert sha(await alice.read(done.file.node_id)) == sha(payload)
    usage = await alice.usage()
    assert (usage.used, usage.reserved) == (len(payload), 0)


async def test_a_stream_cancelled_while_waiting_for_bytes_lets_go_and_resumes(alice, peek, debug_logs):
    payload = os.urandom(PART + 3)
    started = await alice.start("interrupted.bin", payload)
    log = StreamLog(debug_logs, alice.account_id)
    never = asyncio.Event()
    call = alice.stub.UploadChunks(held_stream(started.upload_id, payload[:MIB], never), metadata=await alice.metadata(), timeout=60)
    try:
        await stream_waits_for_the_client(peek, started.upload_id)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        end = await log.ended()
    finally:
        call.cancel()
    assert end["code"] == "CANCELLED", end
    await let_go(peek, started.upload_id)
    done = await alice.send(started.upload_id, 0, payload)
    assert done.file.sha256 == sha(payload)


async def test_a_refusal_after_a_wait_for_the_client_lets_go_and_resumes(alice, peek, debug_logs):
    payload = os.urandom(PART + 3)
    started = await alice.start("refused.bin", payload)
    log = StreamLog(debug_logs, alice.account_id)
    go_on = asyncio.Event()
    too_much = os.urandom(len(payload))
    call = alice.stub.UploadChunks(
        held_stream(started.upload_id, payload[:MIB], go_on, then=too_much), metadata=await alice.metadata(), timeout=60
    )
    try:
        await stream_waits_for_the_client(peek, started.upload_id)
        go_on.set()
        await expect_error(answer(call), grpc.StatusCode.INVALID_ARGUMENT, field="data")
        end = await log.ended()
    finally:
        go_on.set()
        call.cancel()
    assert end["code"] == "INVALID_ARGUMENT", end
    await let_go(peek, started.upload_id)
    done = await alice.send(started.upload_id, 0, payload)
    assert done.file.sha256 == sha(payload)
