"""Commands to a device, at least once: a command not acknowledged comes again on the
device's next stream (and a device that keeps the ids it ran runs it once only); commands
queued while no stream is open all arrive when one opens, oldest first; PollCommands for
devices that poll; a command queued while a stream is open reaches it through the live
notices, whichever process the stream and the sender are on; and expiry after the time to
live, with the ranges SendCommand checks."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pathlib
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo.locator.v1 import locator_pb2_grpc
from cumulo_devstack.servers import Process, free_port, wait_for_port
from cumulo_devstack.testing import eventually, expect_error, open_channel, rpc, serves_service
from cumulo_locator.adapters.tables import commands
from cumulo_sdk.devices import Executed, Fix, run_agent, walk

WAIT = 15.0  # generous: a shared machine; the product's aim is well under a second


# --- a raw stream, as a device without the SDK opens it -------------------------------------


async def open_stream(client: Any, device_id: str, channel: grpc.aio.Channel | None = None) -> Any:
    """ReceiveCommands on `channel` (the client's own, through the gateway, by default)."""
    stub = locator_pb2_grpc.DeviceAgentServiceStub(channel or client.channel)
    token = await client.access_token()
    return stub.ReceiveCommands(pb.ReceiveCommandsRequest(device_id=device_id), metadata=client.metadata(token))


async def next_command(stream: Any) -> pb.Command:
    """The stream's next command, heartbeats skipped."""

    async def first() -> pb.Command:
        while True:
            message = await stream.read()
            if message is grpc.aio.EOF:
                raise AssertionError("the command stream ended")
            if message.HasField("command"):
                return message.command

    return await asyncio.wait_for(first(), WAIT)


async def no_command_before_a_heartbeat(stream: Any) -> None:
    """A heartbeat comes only after the stream has sent every pending command: nothing
    pending was there when the stream opened."""

    async def first() -> None:
        while True:
            message = await stream.read()
            assert message is not grpc.aio.EOF, "the command stream ended"
            assert not message.HasField("command"), f"unexpected command {message.command}"
            if message.heartbeat:
                return

    await asyncio.wait_for(first(), WAIT)


# --- at least once ------------------------------------------------------------------------


async def test_a_command_not_acknowledged_comes_again_on_the_next_stream(owner) -> None:
    sent = await owner.client.devices.ring(owner.device_id, 15)
    first = await open_stream(owner.phone, owner.device_id)
    got = await next_command(first)
    assert (got.command_id, got.state, got.deliveries) == (sent.command_id, pb.COMMAND_STATE_DELIVERED, 1)
    first.cancel()  # dropped before the device acknowledged it

    second = await open_stream(owner.phone, owner.device_id)
    again = await next_command(second)
    assert (again.command_id, again.kind, again.ring_seconds, again.deliveries) == (sent.command_id, pb.COMMAND_KIND_RING, 15, 2)
    listed = await owner.client.devices.command(sent.command_id)
    assert (listed.state, listed.deliveries) == (pb.COMMAND_STATE_DELIVERED, 2)
    acked = await owner.agent.ack(owner.device_id, sent.command_id, detail="rang")
    assert acked.state == pb.COMMAND_STATE_SUCCEEDED
    second.cancel()

    # Acknowledged: a third stream has nothing to send.
    third = await open_stream(owner.phone, owner.device_id)
    await no_command_before_a_heartbeat(third)
    third.cancel()
    final = await owner.client.devices.command(sent.command_id)
    assert (final.state, final.deliveries, final.detail) == (pb.COMMAND_STATE_SUCCEEDED, 2, "rang")


class Crash(Exception):
    """The device died right after running a command, before it could acknowledge it."""


class CrashesAfterRunning(Executed):
    def add(self, command_id: str) -> None:
        super().add(command_id)
        raise Crash(command_id)


async def test_a_device_that_died_before_acknowledging_runs_the_command_once_only(owner, tmp_path: pathlib.Path) -> None:
    memory = tmp_path / "executed.json"
    said: list[str] = []
    ring = await owner.client.devices.ring(owner.device_id, 5)

    with pytest.raises(Crash):
        await asyncio.wait_for(
            run_agent(
                owner.phone, device_id=owner.device_id, name="Ann's phone", fixes=walk(Fix(31.2, 121.4)), every=60,
                executed=CrashesAfterRunning(memory), stop_after=1, say=said.append,
            ),
            WAIT * 2,
        )
    assert [line for line in said if ring.command_id in line] == [f"command {ring.command_id}: ringing for 5 s"]
    assert (await owner.client.devices.command(ring.command_id)).state == pb.COMMAND_STATE_DELIVERED  # never acknowledged

    # The device starts again: the ring comes again, is acknowledged, not run; the next one runs.
    locate = await owner.client.devices.locate(owner.device_id)
    said.clear()
    handled = await asyncio.wait_for(
        run_agent(
            owner.phone, device_id=owner.device_id, name="Ann's phone", fixes=walk(Fix(31.2, 121.4)), every=60,
            executed=Executed(memory), stop_after=1, say=said.append,
        ),
        WAIT * 2,
    )
    assert handled == 1
    commands_said = [line for line in said if line.startswith("command ")]
    assert commands_said == [f"command {locate.command.command_id}: locating: reporting a fresh position"]
    rang = await owner.client.devices.command(ring.command_id)
    assert (rang.state, rang.deliveries, rang.detail) == (pb.COMMAND_STATE_SUCCEEDED, 2, "already done")
    located = await owner.client.devices.command(locate.command.command_id)
    assert (located.state, located.deliveries) == (pb.COMMAND_STATE_SUCCEEDED, 1)
    assert Executed(memory).ids == {ring.command_id, locate.command.command_id}

    # Acknowledged twice (the device's retry after a lost answer): the same answer, nothing changes.
    again = await owner.agent.ack(owner.device_id, ring.command_id, succeeded=False, detail="late retry")
    assert (again.state, again.detail, again.completed_at) == (rang.state, rang.detail, rang.completed_at)
    assert await owner.agent.poll(owner.device_id) == []


async def test_commands_queued_while_no_stream_is_open_all_arrive_oldest_first(owner) -> None:
    devices = owner.client.devices
    sent = [
        (await devices.locate(owner.device_id)).command,
        await devices.ring(owner.device_id, 10),
        await devices.lost_mode(owner.device_id, message="Please return", phone="+86 138 0013 8000"),
        await devices.ring(owner.device_id, 20),
        await devices.lost_mode(owner.device_id, enabled=False),
    ]
    assert all(c.state == pb.COMMAND_STATE_QUEUED for c in sent)
    stream = owner.agent.commands(owner.device_id)
    received = [await asyncio.wait_for(stream.__anext__(), WAIT) for _ in sent]
    assert [c.command_id for c in received] == [c.command_id for c in sent]
    assert [c.kind for c in received] == [
        pb.COMMAND_KIND_LOCATE, pb.COMMAND_KIND_RING, pb.COMMAND_KIND_LOST_MODE, pb.COMMAND_KIND_RING, pb.COMMAND_KIND_LOST_MODE,
    ]
    assert received[2].lost_mode == pb.LostMode(enabled=True, message="Please return", contact_phone="+86 138 0013 8000")
    assert not received[4].lost_mode.enabled
    assert [c.ring_seconds for c in received if c.kind == pb.COMMAND_KIND_RING] == [10, 20]
    for command in received:
        await owner.agent.ack(owner.device_id, command.command_id)
    await stream.aclose()
    listed = await owner.client.devices.commands(owner.device_id)
    assert [c.command_id for c in listed] == [c.command_id for c in reversed(sent)]  # newest first
    assert {c.state for c in listed} == {pb.COMMAND_STATE_SUCCEEDED}


async def test_poll_returns_the_pending_commands_until_they_are_acknowledged(owner) -> None:
    assert await owner.agent.poll(owner.device_id) == []
    ring = await owner.client.devices.ring(owner.device_id, 7)
    lock = await owner.client.devices.lost_mode(owner.device_id, message="Lost")
    polled = await owner.agent.poll(owner.device_id)
    assert [(c.command_id, c.state, c.deliveries) for c in polled] == [
        (ring.command_id, pb.COMMAND_STATE_DELIVERED, 1), (lock.command_id, pb.COMMAND_STATE_DELIVERED, 1),
    ]
    # Not acknowledged: polled again, counted again.
    assert [(c.command_id, c.deliveries) for c in await owner.agent.poll(owner.device_id)] == [
        (ring.command_id, 2), (lock.command_id, 2),
    ]
    await owner.agent.ack(owner.device_id, ring.command_id, detail="rang")
    assert [c.command_id for c in await owner.agent.poll(owner.device_id)] == [lock.command_id]
    failed = await owner.agent.ack(owner.device_id, lock.command_id, succeeded=False, detail="screen lock unavailable")
    assert (failed.state, failed.detail) == (pb.COMMAND_STATE_FAILED, "screen lock unavailable")
    assert await owner.agent.poll(owner.device_id) == []
    await expect_error(
        owner.agent.ack(owner.device_id, "00000000-0000-0000-0000-000000000000"), grpc.StatusCode.NOT_FOUND, reason="COMMAND_NOT_FOUND"
    )


async def test_a_command_queued_while_the_stream_is_open_reaches_it(owner) -> None:
    stream = await open_stream(owner.phone, owner.device_id)
    await no_command_before_a_heartbeat(stream)  # the stream is open and listening
    for seconds in (3, 4):
        sent = await owner.client.devices.ring(owner.device_id, seconds)
        got = await next_command(stream)
        assert (got.command_id, got.ring_seconds, got.deliveries) == (sent.command_id, seconds, 1)
        await owner.agent.ack(owner.device_id, got.command_id)
    stream.cancel()


async def test_another_accounts_device_stream_is_refused(owner, stranger) -> None:
    stream = await open_stream(stranger, owner.device_id)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await asyncio.wait_for(stream.read(), WAIT)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


# --- two locator processes ---------------------------------------------------------------


@pytest.fixture
async def replica(locator, infra, auth, lifecycle_target, tmp_path: pathlib.Path) -> AsyncIterator[str]:
    """Another locator process on the same database and NATS: what a second pod is. Its
    heartbeat is an hour, so a stream of it wakes up only on a live notice (or a command
    pending when it opens); its jobs run hourly, as the session's do."""
    port = free_port()
    env = {
        **os.environ,
        **infra.service_environ(
            CUMULO_AUTH_TARGET=auth.target,
            CUMULO_LIFECYCLE_TARGET=lifecycle_target,
            CUMULO_GRPC_PORT=str(port),
            CUMULO_LOCATOR_HEARTBEAT="PT1H",
            CUMULO_LOCATOR_PRUNE_EVERY="PT1H",
            CUMULO_LOCATOR_EXPIRE_EVERY="PT1H",
        ),
        "DATABASE_URL": locator.app.settings.platform.database_url,
    }
    process = Process("locator-2", [sys.executable, "-m", "cumulo_locator"], tmp_path / "locator-2.log", env=env)
    process.start()
    try:
        await asyncio.to_thread(wait_for_port, port, process=process.process, timeout=60)
        serves_service(f"127.0.0.1:{port}", "locator")
        yield f"127.0.0.1:{port}"
    finally:
        await asyncio.to_thread(process.stop, 30)


async def test_a_command_sent_through_one_process_reaches_a_stream_on_another(owner, replica) -> None:
    async with open_channel(replica) as channel:
        owner_side = locator_pb2_grpc.DeviceLocatorServiceStub(channel)
        # Pending when the stream opens: sent at once (and proof that the stream listens).
        pending = await owner.client.devices.ring(owner.device_id, 9)
        stream = await open_stream(owner.phone, owner.device_id, channel)
        assert (await next_command(stream)).command_id == pending.command_id

        # Queued through the gateway, i.e. by the session's locator process: the stream on the
        # second process hears of it (its heartbeat, an hour, would not wake it before).
        through_gateway = await owner.client.devices.ring(owner.device_id, 10)
        got = await next_command(stream)
        assert (got.command_id, got.ring_seconds) == (through_gateway.command_id, 10)

        # Queued on the second process itself, by the owner calling it directly.
        direct = await rpc(
            owner_side.SendCommand,
            pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_LOCATE),
            metadata=owner.client.metadata(await owner.client.access_token()),
        )
        got = await next_command(stream)
        assert (got.command_id, got.kind) == (direct.command.command_id, pb.COMMAND_KIND_LOCATE)
        stream.cancel()

    # The other way round: a stream through the gateway (session process) hears a command
    # queued on the second process.
    back = await open_stream(owner.phone, owner.device_id)
    assert {(await next_command(back)).command_id for _ in range(3)} == {
        pending.command_id, through_gateway.command_id, direct.command.command_id,
    }  # not acknowledged yet: sent again on the new stream
    async with open_channel(replica) as channel:
        sent = await rpc(
            locator_pb2_grpc.DeviceLocatorServiceStub(channel).SendCommand,
            pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_RING, ring_seconds=11),
            metadata=owner.client.metadata(await owner.client.access_token()),
        )
    got = await next_command(back)
    assert (got.command_id, got.ring_seconds) == (sent.command.command_id, 11)
    back.cancel()
    for command_id in (pending.command_id, through_gateway.command_id, direct.command.command_id, sent.command.command_id):
        assert (await owner.agent.ack(owner.device_id, command_id)).state == pb.COMMAND_STATE_SUCCEEDED


# --- expiry ---------------------------------------------------------------------------------


async def test_a_command_past_its_time_to_live_expires_and_is_never_delivered(owner, locator) -> None:
    short = await owner.client.devices.send(
        pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_RING, ring_seconds=5, ttl_seconds=60)
    )
    assert short.expires_at.ToDatetime() - short.created_at.ToDatetime() == dt.timedelta(seconds=60)
    lasting = await owner.client.devices.ring(owner.device_id, 6)  # the default: a day
    assert lasting.expires_at.ToDatetime() - lasting.created_at.ToDatetime() == dt.timedelta(days=1)

    before = locator.clock.offset
    locator.clock.offset = before + dt.timedelta(minutes=2)
    try:
        # Past its time, it is not sent even before the job has marked it.
        assert [c.command_id for c in await owner.agent.poll(owner.device_id)] == [lasting.command_id]
        assert await locator.app.commands.expire() >= 1
        expired = await owner.client.devices.command(short.command_id)
        assert expired.state == pb.COMMAND_STATE_EXPIRED and expired.completed_at.ByteSize()
        assert (await owner.client.devices.command(lasting.command_id)).state == pb.COMMAND_STATE_DELIVERED
    finally:
        locator.clock.offset = before

    # Back on time: the expired command is never sent again, on a poll or a stream.
    assert [c.command_id for c in await owner.agent.poll(owner.device_id)] == [lasting.command_id]
    stream = await open_stream(owner.phone, owner.device_id)
    assert (await next_command(stream)).command_id == lasting.command_id
    await no_command_before_a_heartbeat(stream)
    stream.cancel()
    await expect_error(
        owner.agent.ack(owner.device_id, short.command_id), grpc.StatusCode.FAILED_PRECONDITION, reason="COMMAND_EXPIRED"
    )
    assert (await owner.client.devices.command(short.command_id)).state == pb.COMMAND_STATE_EXPIRED
    assert (await owner.agent.ack(owner.device_id, lasting.command_id)).state == pb.COMMAND_STATE_SUCCEEDED
    # The job again: nothing more of this device to expire, and the acknowledged one stays.
    await locator.app.commands.expire()
    assert (await owner.client.devices.command(lasting.command_id)).state == pb.COMMAND_STATE_SUCCEEDED


async def test_an_acknowledgement_after_the_time_to_live_is_refused_and_expires_the_command(owner, locator) -> None:
    """The device got it in time but answers too late, before the expiry job has run."""
    sent = await owner.client.devices.send(
        pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_LOCATE, ttl_seconds=60)
    )
    (polled,) = await owner.agent.poll(owner.device_id)
    assert polled.command_id == sent.command_id
    before = locator.clock.offset
    locator.clock.offset = before + dt.timedelta(minutes=2)
    try:
        await expect_error(
            owner.agent.ack(owner.device_id, sent.command_id), grpc.StatusCode.FAILED_PRECONDITION, reason="COMMAND_EXPIRED"
        )
    finally:
        locator.clock.offset = before
    assert (await owner.client.devices.command(sent.command_id)).state == pb.COMMAND_STATE_EXPIRED
    await expect_error(
        owner.agent.ack(owner.device_id, sent.command_id), grpc.StatusCode.FAILED_PRECONDITION, reason="COMMAND_EXPIRED"
    )
    assert await owner.agent.poll(owner.device_id) == []


async def test_send_command_checks_its_ranges_naming_the_field(owner) -> None:
    def ring(**fields: int) -> pb.SendCommandRequest:
        return pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_RING, **fields)

    for ttl in (1, 59, -60, 7 * 86400 + 1):
        await expect_error(owner.client.devices.send(ring(ttl_seconds=ttl)), grpc.StatusCode.INVALID_ARGUMENT, field="ttl_seconds")
    for seconds in (-1, 601, 100_000):
        await expect_error(owner.client.devices.send(ring(ring_seconds=seconds)), grpc.StatusCode.INVALID_ARGUMENT, field="ring_seconds")
    for kind in (pb.COMMAND_KIND_UNSPECIFIED, 99):
        await expect_error(
            owner.client.devices.send(pb.SendCommandRequest(device_id=owner.device_id, kind=kind)),
            grpc.StatusCode.INVALID_ARGUMENT, field="kind",
        )
    await expect_error(
        owner.client.devices.lost_mode(owner.device_id, message="x" * 201), grpc.StatusCode.INVALID_ARGUMENT, field="lost_mode.message"
    )
    await expect_error(
        owner.client.devices.lost_mode(owner.device_id, phone="call me"), grpc.StatusCode.INVALID_ARGUMENT, field="lost_mode.contact_phone"
    )
    assert await owner.client.devices.commands(owner.device_id) == []  # nothing refused was queued
    # The bounds themselves are accepted; 0 ring seconds means 30.
    made = [
        await owner.client.devices.send(ring(ttl_seconds=60)),
        await owner.client.devices.send(ring(ttl_seconds=7 * 86400, ring_seconds=600)),
        await owner.client.devices.send(ring(ring_seconds=1)),
        await owner.client.devices.send(ring()),
    ]
    assert [c.ring_seconds for c in made] == [30, 600, 1, 30]
    assert [int((c.expires_at.ToDatetime() - c.created_at.ToDatetime()).total_seconds()) for c in made] == [60, 7 * 86400, 86400, 86400]


async def test_a_huge_time_to_live_is_refused_naming_the_field(owner) -> None:
    await expect_error(
        owner.client.devices.send(pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_RING, ttl_seconds=2**62)),
        grpc.StatusCode.INVALID_ARGUMENT, field="ttl_seconds",
    )


# --- an acknowledgement racing a delivery ---------------------------------------------------


async def waiting_on_a_lock(db: Any, fragment: str) -> bool:
    """Whether a session of the locator's database waits for a row lock in a statement containing `fragment`."""
    async with db.read() as conn:
        count = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND position(:fragment in query) > 0"
                ),
                {"fragment": fragment},
            )
        ).scalar_one()
    return count > 0


async def test_a_delivery_racing_an_acknowledgement_does_not_undo_it(owner, locator) -> None:
    """The device acknowledges while a poll (or another stream) of it is delivering the same
    command: the acknowledgement must stand. Made deterministic with a row lock the test
    holds: the ack queues for it first; the poll then skips the row being acknowledged
    (it is not sent again), and the test lets go."""
    sent = await owner.client.devices.ring(owner.device_id, 8)
    (polled,) = await owner.agent.poll(owner.device_id)
    assert polled.command_id == sent.command_id
    async with locator.app.db.unit_of_work() as holder:
        await holder.execute(sa.select(commands.c.command_id).where(commands.c.command_id == uuid.UUID(sent.command_id)).with_for_update())
        ack = asyncio.create_task(owner.agent.ack(owner.device_id, sent.command_id, detail="rang"))
        await eventually(lambda: waiting_on_a_lock(locator.app.db, "FOR UPDATE"), what="the ack to wait for the row")
        delivered = await asyncio.wait_for(owner.agent.poll(owner.device_id), WAIT)
        await holder.commit()
    acked = await asyncio.wait_for(ack, WAIT)
    assert acked.state == pb.COMMAND_STATE_SUCCEEDED
    final = await owner.client.devices.command(sent.command_id)
    assert (final.state, final.detail) == (pb.COMMAND_STATE_SUCCEEDED, "rang")
    assert [c.command_id for c in delivered] == []
