"""An HTTPS server of a test's own, with the session's development certificate (so the SDK,
trusting CUMULO_CA, talks to it as to the gateway): for what a real object store will not do
on purpose (hold a body, cut a connection, ignore a Range)."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

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
