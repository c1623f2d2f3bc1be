"""Find my device end to end through the gateway: reports, the last position, history,
commands from the owner to the device's stream and back."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo_devstack.testing import PASSWORD, expect_error

from .conftest import point

WAIT = 15.0


async def test_a_report_becomes_the_devices_last_position(owner) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    earlier = now - dt.timedelta(minutes=5)
    response = await owner.agent.report(owner.device_id, [point(31.1, 121.1, at=earlier), point(31.2, 121.2, at=now)])
    assert response.stored == 2
    (device,) = await owner.client.devices.list()
    assert device.device_id == owner.device_id and device.name == "Ann's phone" and device.battery == 80
    assert (device.last_location.latitude, device.last_location.longitude) == (31.2, 121.2)
    # An older point arriving late goes into the history only; the same point twice is kept once.
    late = await owner.agent.report(owner.device_id, [point(30.0, 120.0, at=now - dt.timedelta(hours=1)), point(31.1, 121.1, at=earlier)])
    assert late.stored == 1
    device = await owner.client.devices.get(owner.device_id)
    assert device.last_location.latitude == 31.2
    history = await owner.client.devices.history(owner.device_id)
    assert [h.latitude for h in history] == [31.2, 31.1, 30.0]


async def test_concurrent_single_reports_are_all_stored(owner) -> None:
    answers = await asyncio.gather(*[
        owner.agent.report(owner.device_id, [point(30 + i / 100, 120, ago=dt.timedelta(seconds=i))]) for i in range(40)
    ])
    assert sum(a.stored for a in answers) == 40
    assert len(await owner.client.devices.history(owner.device_id)) == 40
    assert (await owner.client.devices.get(owner.device_id)).last_location.latitude == 30.0


async def test_a_command_reaches_the_devices_stream_and_its_ack_the_owner(owner) -> None:
    stream = owner.agent.commands(owner.device_id)
    sent = await owner.client.devices.ring(owner.device_id, 20)
    assert sent.state == pb.COMMAND_STATE_QUEUED
    received = await asyncio.wait_for(stream.__anext__(), WAIT)
    assert (received.command_id, received.kind, received.ring_seconds) == (sent.command_id, pb.COMMAND_KIND_RING, 20)
    assert (await owner.client.devices.command(sent.command_id)).state == pb.COMMAND_STATE_DELIVERED
    acked = await owner.agent.ack(owner.device_id, sent.command_id, detail="rang")
    assert acked.state == pb.COMMAND_STATE_SUCCEEDED
    assert (await owner.agent.ack(owner.device_id, sent.command_id)).state == pb.COMMAND_STATE_SUCCEEDED
    (listed,) = await owner.client.devices.commands(owner.device_id)
    assert (listed.state, listed.detail, listed.deliveries) == (pb.COMMAND_STATE_SUCCEEDED, "rang", 1)
    await stream.aclose()


async def test_lost_mode_then_a_report_marks_the_device_found(owner, locator) -> None:
    await owner.client.devices.lost_mode(owner.device_id, message="Lost! Reward", phone="+86 138 0013 8000")
    device = await owner.client.devices.get(owner.device_id)
    assert device.lost_mode.enabled and not device.lost_mode.found_at.ByteSize()
    response = await owner.agent.report(owner.device_id, [point()])
    assert response.lost_mode.enabled and response.lost_mode.message == "Lost! Reward"
    device = await owner.client.devices.get(owner.device_id)
    assert device.lost_mode.found_at.ByteSize()


async def test_wipe_needs_a_freshly_confirmed_password(owner, locator) -> None:
    """The login entered the password; six minutes later (the locator's clock moved) that is
    too long ago, and ConfirmPassword makes it fresh again."""
    before = locator.clock.offset
    locator.clock.offset = before + dt.timedelta(minutes=6)
    try:
        await expect_error(
            owner.client.devices.send(pb.SendCommandRequest(device_id=owner.device_id, kind=pb.COMMAND_KIND_WIPE)),
            grpc.StatusCode.FAILED_PRECONDITION, reason="RECENT_PASSWORD_REQUIRED",
        )
    finally:
        locator.clock.offset = before
    assert (await owner.client.devices.commands(owner.device_id)) == []
    wipe = await owner.client.devices.wipe(owner.device_id, password=PASSWORD)
    assert wipe.kind == pb.COMMAND_KIND_WIPE
    await owner.agent.ack(owner.device_id, wipe.command_id)
    assert (await owner.client.devices.get(owner.device_id)).wiped_at.ByteSize()


async def test_bad_positions_are_refused_naming_the_field(owner) -> None:
    cases = {
        "locations[0].latitude": point(91, 0),
        "locations[0].longitude": point(0, -181),
        "locations[0].accuracy": point(accuracy=-1),
        "locations[0].battery": point(battery=101),
    }
    for field, location in cases.items():
        await expect_error(owner.agent.report(owner.device_id, [location]), grpc.StatusCode.INVALID_ARGUMENT, field=field)
    future = point(ago=-dt.timedelta(hours=1))
    await expect_error(owner.agent.report(owner.device_id, [point(), future]), grpc.StatusCode.INVALID_ARGUMENT, field="locations[1].measured_at")
    old = point(ago=dt.timedelta(days=8))
    await expect_error(owner.agent.report(owner.device_id, [old]), grpc.StatusCode.INVALID_ARGUMENT, field="locations[0].measured_at")
    await expect_error(owner.agent.report(owner.device_id, []), grpc.StatusCode.INVALID_ARGUMENT, field="locations")
    assert await owner.client.devices.history(owner.device_id) == []


async def test_another_account_cannot_see_or_command_the_device(owner, stranger) -> None:
    assert await stranger.devices.list() == []
    await expect_error(stranger.devices.get(owner.device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
    await expect_error(stranger.devices.ring(owner.device_id), grpc.StatusCode.NOT_FOUND, reason="DEVICE_NOT_FOUND")
    await expect_error(stranger.devices.list(owner.account_id), grpc.StatusCode.PERMISSION_DENIED, reason="NOT_YOUR_DEVICES")
