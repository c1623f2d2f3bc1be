"""Positions are personal data: the locator's answers to bad ones name the field and the
rule, never the numbers, and its logs never carry them. The door of every method:
test_security.py."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid

import grpc
import pytest

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo.locator.v1 import locator_pb2_grpc
from cumulo_devstack.testing import People, Person, everything_said, expect_error, open_channel
from cumulo_sdk import CumuloRpcError
from cumulo_sdk.devices import DeviceAgent

from .conftest import point

# --- positions are personal data: never in errors, never in logs ------------------------------

GOOD = (-33.8567844, 151.2152967)  # a position the reports below send along with a bad one
BAD_POSITIONS: dict[str, tuple[str, pb.Location]] = {
    "latitude-out-of-range": ("locations[0].latitude", point(91.2468013, 151.2152967)),
    "latitude-far-south": ("locations[0].latitude", point(-123.4567891, 10.1112131)),
    "longitude-out-of-range": ("locations[0].longitude", point(-33.8567844, -181.9753124)),
    "longitude-far-east": ("locations[0].longitude", point(12.3456789, 987.6543219)),
    "accuracy": ("locations[0].accuracy", point(-33.8567844, 151.2152967, accuracy=-7.25)),
    "altitude": ("locations[0].altitude", point(-33.8567844, 151.2152967, altitude=123456.789)),
    "speed": ("locations[0].speed", point(-33.8567844, 151.2152967, speed=4321.125)),
    "battery": ("locations[0].battery", point(-33.8567844, 151.2152967, battery=150)),
    "source": ("locations[0].source", point(-33.8567844, 151.2152967, source=pb.LOCATION_SOURCE_UNSPECIFIED)),
    "future": ("locations[0].measured_at", point(-33.8567844, 151.2152967, ago=-dt.timedelta(hours=2))),
    "too-old": ("locations[0].measured_at", point(-33.8567844, 151.2152967, ago=dt.timedelta(days=9))),
    "not-a-number": ("locations[0].latitude", point(math.nan, 151.2152967)),
    "infinite": ("locations[0].longitude", point(-33.8567844, math.inf)),
}


def spellings(value: float) -> set[str]:
    """How a coordinate might be written in a message or a log line (at least three
    decimals: with fewer, other numbers of a log line, such as durations, could match)."""
    if not math.isfinite(value) or value == 0:
        return set()
    found = {repr(value), str(value), f"{value:.6f}", f"{value:.5f}", f"{value:.4f}", f"{value:.3f}"}
    return found | {s.lstrip("-") for s in found}


def numbers_of(location: pb.Location) -> set[str]:
    return spellings(location.latitude) | spellings(location.longitude) | spellings(location.altitude) | spellings(location.speed)


@pytest.fixture(scope="module")
async def reporter(module_people: People) -> tuple[Person, str]:
    """An account with a registered device, for the bad reports."""
    person = await module_people.new("reporter")
    device_id = f"phone-{uuid.uuid4().hex[:6]}"
    await DeviceAgent(person.client).register(device_id, name="Reporter's phone")
    return person, device_id


@pytest.mark.parametrize("batch", ["alone", "after-a-good-one"])
@pytest.mark.parametrize("case", list(BAD_POSITIONS))
async def test_a_bad_position_is_refused_without_repeating_a_coordinate(gateway, reporter, case, batch):
    person, device_id = reporter
    field, bad = BAD_POSITIONS[case]
    locations = [bad] if batch == "alone" else [point(*GOOD, ago=dt.timedelta(minutes=1)), bad]
    if batch == "after-a-good-one":
        field = field.replace("locations[0]", "locations[1]")
    async with open_channel(gateway) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await locator_pb2_grpc.DeviceAgentServiceStub(channel).ReportLocations(
                pb.ReportLocationsRequest(device_id=device_id, locations=locations), metadata=await person.metadata(), timeout=10
            )
    err = CumuloRpcError.from_rpc_error(caught.value)
    assert (err.code, err.field) == (grpc.StatusCode.INVALID_ARGUMENT, field), err
    said = everything_said(caught.value)
    for number in set().union(*(numbers_of(location) for location in locations)):
        assert number not in said, f"{number} in the answer: {said}"
    assert await person.client.devices.history(device_id) == []


async def test_positions_never_reach_the_locators_logs(owner, debug_logs):
    """A report with a bad position, one with a bad and a good one, and one with good ones;
    then the owner reads them back and sends the phone to lost mode (which marks it found at
    the next report). The locator logs every call at debug level, but never a coordinate."""
    # (integer parts of 60 and more: never mistaken for the seconds of a log line's timestamp)
    bad = point(95.4321987, 117.6543219)
    first = point(-64.2864603, 174.7762426, ago=dt.timedelta(minutes=3))
    second = point(-64.2901234, 174.7798765, ago=dt.timedelta(minutes=2))
    third = point(-64.2934567, 174.7812345, ago=dt.timedelta(minutes=1))
    await expect_error(owner.agent.report(owner.device_id, [bad]), grpc.StatusCode.INVALID_ARGUMENT, field="locations[0].latitude")
    await expect_error(owner.agent.report(owner.device_id, [first, bad]), grpc.StatusCode.INVALID_ARGUMENT, field="locations[1].latitude")
    assert (await owner.agent.report(owner.device_id, [first, second])).stored == 2
    await owner.client.devices.get(owner.device_id)
    await owner.client.devices.history(owner.device_id)
    await owner.client.devices.locate(owner.device_id)
    await owner.client.devices.lost_mode(owner.device_id, message="Please call me", phone="+86 138 0013 8000")
    assert (await owner.agent.report(owner.device_id, [third])).lost_mode.enabled
    assert (await owner.client.devices.get(owner.device_id)).lost_mode.found_at.ByteSize()
    text = debug_logs()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    # The control: the capture works, and saw the reports refused and stored.
    reports = [line.get("code") for line in lines if line.get("event") == "rpc" and str(line.get("method", "")).endswith("/ReportLocations")]
    assert reports.count("INVALID_ARGUMENT") == 2 and reports.count("OK") == 2, text
    for location in (bad, first, second, third):
        for number in numbers_of(location):
            assert number not in text, f"{number} logged:\n{text}"


