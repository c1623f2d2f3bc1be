"""Find my device in a real browser: a device (the SDK's device agent, as a phone runs it)
reports a track; the console shows its last position and the track, and a ring sent from the
console reaches the agent; wiping asks for the password, refuses a wrong one and sends nothing;
lost mode carries its message to the device."""

from __future__ import annotations

import datetime as dt
import pathlib
import re

from aiohttp import web
from playwright.async_api import Page, expect

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo_devstack.stack import built_console, running_gateway
from cumulo_devstack.testing.accounts import PASSWORD, Person
from cumulo_devstack.testing.browser import console_context
from cumulo_devstack.testing.https import https_server
from cumulo_devstack.testing.values import png
from cumulo_devstack.testing.waiting import eventually
from cumulo_sdk.devices import DeviceAgent

from .conftest import sign_in


async def _phone(person: Person) -> DeviceAgent:
    agent = DeviceAgent(person.client)
    await agent.register("phone-1", name="Ann's phone", model="Pixel 9", platform="android")
    now = dt.datetime.now(dt.UTC)
    fixes = []
    for i, (lat, lon) in enumerate(((31.2304, 121.4737), (31.2310, 121.4750), (31.2322, 121.4761))):
        fix = pb.Location(latitude=lat, longitude=lon, accuracy=8, battery=80 - i, source=pb.LOCATION_SOURCE_GPS)
        fix.measured_at.FromDatetime(now - dt.timedelta(minutes=10 - i))
        fixes.append(fix)
    await agent.report("phone-1", fixes)
    return agent


async def test_the_track_shows_and_a_ring_reaches_the_device(page: Page, person: Person):
    agent = await _phone(person)
    await sign_in(page, person)
    await page.get_by_role("link", name="Devices").click()
    await expect(page.get_by_role("heading", name="Ann's phone")).to_be_visible()
    await expect(page.get_by_text("Last position 31.23220, 121.47610 (within 8 m)")).to_be_visible()
    track = page.get_by_role("img", name="The last day's track: 3 positions")
    await expect(track).to_be_visible()
    assert await track.locator("polyline").get_attribute("points") is not None

    await page.get_by_role("button", name="Ring").click()
    await expect(page.locator(".commands")).to_contain_text("RING")

    async def rung() -> list[pb.Command]:
        return [c for c in await agent.poll("phone-1") if c.kind == pb.COMMAND_KIND_RING]

    (command,) = await eventually(rung, timeout=20, what="the ring at the device")
    assert command.ring_seconds == 30


async def test_lost_mode_carries_its_message_to_the_device(page: Page, person: Person):
    agent = await _phone(person)
    await sign_in(page, person, "/devices")
    await page.get_by_label("Message on the locked screen").fill("Please call me, reward offered")
    await page.get_by_label("Number to call").fill("+8613800138000")
    await page.get_by_role("button", name="Lost mode").click()
    await expect(page.get_by_role("button", name="End lost mode")).to_be_visible()

    async def lost() -> list[pb.Command]:
        return [c for c in await agent.poll("phone-1") if c.kind == pb.COMMAND_KIND_LOST_MODE]

    (command,) = await eventually(lost, timeout=20, what="lost mode at the device")
    assert (command.lost_mode.enabled, command.lost_mode.message) == (True, "Please call me, reward offered")


async def test_wiping_wants_the_password_and_a_wrong_one_sends_nothing(page: Page, person: Person):
    agent = await _phone(person)
    await sign_in(page, person, "/devices")
    await page.get_by_role("button", name="Erase device").click()
    await page.get_by_label("Password").fill("not my password")
    await page.get_by_role("button", name="Erase it").click()
    await expect(page.get_by_role("alert")).to_be_visible()
    assert [c for c in await agent.poll("phone-1") if c.kind == pb.COMMAND_KIND_WIPE] == []
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Erase it").click()
    await expect(page.locator(".commands")).to_contain_text("WIPE")

    async def wiped() -> list[pb.Command]:
        return [c for c in await agent.poll("phone-1") if c.kind == pb.COMMAND_KIND_WIPE]

    await eventually(wiped, timeout=20, what="the wipe at the device")


async def test_with_a_tile_server_the_track_is_drawn_on_its_map(
    browser, person: Person, infra, backends, tmp_path: pathlib.Path
):
    """A gateway of this test's own names a tile server (CUMULO_GATEWAY_MAP_TILES): the page's
    policy lets images come from there and nowhere else new, and the map asks it for tiles."""
    asked: list[str] = []
    tile = png(256, 256)

    async def tiles(request: web.Request) -> web.StreamResponse:
        asked.append(request.path)
        return web.Response(body=tile, content_type="image/png")

    await _phone(person)
    async with https_server(infra.tls, tiles) as tile_server:
        template = f"{tile_server}/{{z}}/{{x}}/{{y}}.png"
        with running_gateway(infra.tls, tmp_path, backends, console=built_console(map_tiles=template), identities=infra.identities) as gateway:
            context = await console_context(browser, f"https://{gateway}")
            try:
                page = await context.new_page()
                answer = await page.goto("/devices")
                assert answer is not None
                policy = (await answer.all_headers())["content-security-policy"]
                assert f"img-src 'self' blob: data: {tile_server};" in policy
                await sign_in(page, person, "/devices")
                await expect(page.locator(".map .leaflet-tile-loaded").first).to_be_attached()
                await expect(page.locator(".map path.leaflet-interactive").first).to_be_attached()  # the track
                assert asked and all(re.fullmatch(r"/\d+/\d+/\d+\.png", p) for p in asked)
            finally:
                await context.close()
