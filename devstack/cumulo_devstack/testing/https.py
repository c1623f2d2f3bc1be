"""HTTPS in tests. A server of a test's own, with the session's development certificate (so
the SDK, trusting CUMULO_CA, talks to it as to the gateway): for what a real object store will
not do on purpose (hold a body, cut a connection, ignore a Range). And a plain request to a
gateway, as a browser or a script makes it, trusting CUMULO_CA."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.client
import json
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from cumulo_devstack.servers import free_port
from cumulo_devstack.tls import TlsFiles


@contextlib.asynccontextmanager
async def https_server(tls: TlsFiles, handle: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """`handle` answers every GET; yields the server's base URL (https://127.0.0.1:port)."""
    application = web.Application()
    application.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(application, shutdown_timeout=1)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), (self.status, self.headers, self.body[:300])
        return json.loads(self.body)


def _request(gateway: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
    host, port = gateway.rsplit(":", 1)
    context = ssl.create_default_context(cafile=os.environ["CUMULO_CA"])
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


async def request(gateway: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Answer:
    return await asyncio.to_thread(_request, gateway, method, path, body, headers or {})
