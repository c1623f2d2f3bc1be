"""How the gateway serves the console: the page for every console path, hashed assets cached
for a year, a strict Content-Security-Policy and no inline code, and the API's own answers
left alone (an unknown gRPC or JSON path is not a page)."""

from __future__ import annotations

import asyncio
import gzip
import re

from cumulo_devstack.stack import WEB_DIST
from cumulo_devstack.testing.https import request
from cumulo_sdk import Cumulo


async def _get(gateway: str, path: str, method: str = "GET", encoding: str = "identity") -> tuple[int, dict[str, str], bytes]:
    answer = await request(gateway, method, path, headers={"accept-encoding": encoding})
    return answer.status, answer.headers, answer.body


async def test_every_console_path_is_the_page_with_a_strict_policy(gateway):
    built = (WEB_DIST / "index.html").read_bytes()
    for path in ("/", "/files", "/files/0b5a", "/s/some-token", "/reactivate?token=abc", "/signin"):
        status, headers, body = await _get(gateway, path)
        assert (status, body) == (200, built), path
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
        assert headers["referrer-policy"] == "no-referrer"  # page URLs can hold share tokens
        assert headers["cache-control"] == "no-cache"
        assert headers["content-type"].startswith("text/html")
    # No inline code: every script is a file of the console's own.
    scripts = re.findall(rb"<script([^>]*)>(.*?)</script>", built, re.S)
    assert scripts and all(b"src=" in attrs and not body.strip() for attrs, body in scripts)
    assert b"style=" not in built and b"<style" not in built


async def test_hashed_assets_are_cached_for_a_year_and_compressed_when_asked(gateway):
    assets = sorted((WEB_DIST / "assets").iterdir())
    assert assets
    for asset in assets:
        status, headers, body = await _get(gateway, f"/assets/{asset.name}")
        assert (status, body) == (200, asset.read_bytes())
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
        assert headers["x-content-type-options"] == "nosniff"
    script = next(a for a in assets if a.suffix == ".js")
    status, headers, body = await _get(gateway, f"/assets/{script.name}", encoding="gzip")
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert len(body) < script.stat().st_size / 2 and gzip.decompress(body) == script.read_bytes()


async def test_what_is_not_a_page_is_not_answered_with_one(gateway):
    # gRPC to a service that is not public, a JSON path the API lacks, a write to a page path.
    for method, path in (("POST", "/cumulo.auth.v1.AuthInternalService/SetAccountRoles"), ("GET", "/v1/nothing"), ("POST", "/files")):
        status, headers, body = await _get(gateway, path, method=method)
        assert status == 404, (method, path)
        assert b"<script" not in body
    # A missing asset is not the page either (a stale tab must not run HTML as a script).
    status, _, body = await _get(gateway, "/assets/index-0000000.js")
    assert status == 404 and b"<html" not in body.lower()


async def test_a_flood_of_page_loads_leaves_the_api_serving_another_person(gateway):
    """Envoy answers the console's files itself: 300 loads of the page and its script, 50 at a
    time, while another person's calls through the same gateway keep being answered."""
    script = next(a.name for a in (WEB_DIST / "assets").iterdir() if a.suffix == ".js")
    gate = asyncio.Semaphore(50)

    async def load(i: int) -> int:
        async with gate:
            return (await request(gateway, "GET", "/" if i % 2 else f"/assets/{script}")).status

    flood = asyncio.gather(*(load(i) for i in range(300)))
    async with Cumulo(gateway) as someone:
        while True:  # the call's own deadline (30 s) fails the test if the flood holds it up
            assert await someone.terms_version()
            if flood.done():
                break
    assert set(await flood) == {200}
