"""How the gateway serves the console: the page for every console path, hashed assets cached
for a year, a strict Content-Security-Policy and no inline code, and the API's own answers
left alone (an unknown gRPC or JSON path is not a page)."""

from __future__ import annotations

import asyncio
import gzip
import re
import ssl
import urllib.error
import urllib.request

import pytest

from cumulo_devstack.stack import WEB_DIST


async def _get(url: str, context: ssl.SSLContext, method: str = "GET", encoding: str = "identity") -> tuple[int, dict[str, str], bytes]:
    """A plain HTTPS request, in a thread (the session's services share this event loop)."""
    return await asyncio.to_thread(_fetch, url, context, method, encoding)


def _fetch(url: str, context: ssl.SSLContext, method: str, encoding: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers={"accept-encoding": encoding})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.fixture
def tls(infra) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(infra.tls.ca))


async def test_every_console_path_is_the_page_with_a_strict_policy(console, tls):
    built = (WEB_DIST / "index.html").read_bytes()
    for path in ("/", "/files", "/files/0b5a", "/s/some-token", "/reactivate?token=abc", "/signin"):
        status, headers, body = await _get(console + path, tls)
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


async def test_hashed_assets_are_cached_for_a_year_and_compressed_when_asked(console, tls):
    assets = sorted((WEB_DIST / "assets").iterdir())
    assert assets
    for asset in assets:
        status, headers, body = await _get(f"{console}/assets/{asset.name}", tls)
        assert (status, body) == (200, asset.read_bytes())
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
        assert headers["x-content-type-options"] == "nosniff"
    script = next(a for a in assets if a.suffix == ".js")
    status, headers, body = await _get(f"{console}/assets/{script.name}", tls, encoding="gzip")
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert len(body) < script.stat().st_size / 2 and gzip.decompress(body) == script.read_bytes()


async def test_what_is_not_a_page_is_not_answered_with_one(console, tls):
    # gRPC to a service that is not public, a JSON path the API lacks, a write to a page path.
    for method, path in (("POST", "/cumulo.auth.v1.AuthInternalService/SetAccountRoles"), ("GET", "/v1/nothing"), ("POST", "/files")):
        status, headers, body = await _get(console + path, tls, method=method)
        assert status == 404, (method, path)
        assert b"<script" not in body
    # A missing asset is not the page either (a stale tab must not run HTML as a script).
    status, _, body = await _get(f"{console}/assets/index-0000000.js", tls)
    assert status == 404 and b"<html" not in body.lower()
