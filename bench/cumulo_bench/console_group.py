"""Group `console`: the web console in Debian's Chromium against the bench cloud. What the
browser downloads for the sign-in page (compressed bytes on the wire, against the 300 KiB
budget), and the time to show a folder of 1,000 files, beside the same listing fetched by the
SDK through the gateway in the same run."""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
import sys
import time

from playwright.async_api import Page, Request

from cumulo.blob.v1 import blob_pb2
from cumulo_bench.report import Figure
from cumulo_bench.stack import BenchStack
from cumulo_devstack.testing.browser import chromium, console_context, sign_in
from cumulo_sdk import Cumulo

PASSWORD = "benchmark passphrase 2026"
FILES = 1000
ROUNDS = 5
BUDGET_KIB = 300.0


async def _first_load(page: Page) -> float:
    """KiB on the wire (bodies as sent, compressed) for a cold load of the sign-in page."""
    requests: list[Request] = []

    def finished(request: Request) -> None:
        requests.append(request)

    page.on("requestfinished", finished)
    await page.goto("/signin", wait_until="networkidle")
    await page.get_by_role("heading", name="Sign in").wait_for()
    sizes = [await request.sizes() for request in requests]
    return sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes) / 1024


async def run(stack: BenchStack) -> list[Figure]:
    backends = stack.start_services()
    gateway = stack.start_gateway(backends)
    base = f"https://{gateway}"
    async with Cumulo(gateway, transport=stack.transport(gateway)) as client:
        email = f"bench-console-{dt.datetime.now().timestamp():.0f}@example.com"
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1), locale="en")
        await client.login(email, PASSWORD, device_name="bench")
        print(f"  a folder of {FILES} files (instant uploads of one content) ...", file=sys.stderr, flush=True)
        folder = await client.files.mkdir("", "thousand")
        content = b"one photo's bytes" * 100
        source = stack.root / "one.jpg"
        source.write_bytes(content)
        first = await client.files.upload(source, parent_id=folder.node_id)
        digest = hashlib.sha256(content).hexdigest()
        for i in range(FILES - 1):
            request = blob_pb2.StartUploadRequest(parent_id=folder.node_id, name=f"IMG_{i:04}.jpg", size=len(content), sha256=digest)
            answer = await client.call(client.files.stub.StartUpload, request)
            assert answer.HasField("file") and first.size == len(content)

        async def api_listing() -> float:
            started = time.perf_counter()
            listed = await client.call(client.files.stub.ListFolder, blob_pb2.ListFolderRequest(folder_id=folder.node_id, page_size=1000))
            assert len(listed.nodes) == FILES
            return (time.perf_counter() - started) * 1000

        async with chromium() as browser:
            print("  the sign-in page, cold ...", file=sys.stderr, flush=True)
            context = await console_context(browser, base)
            first_load = await _first_load(await context.new_page())
            await context.close()

            print(f"  showing the folder of {FILES}, {ROUNDS} times, beside the SDK's listing ...", file=sys.stderr, flush=True)
            context = await console_context(browser, base)
            page = await context.new_page()
            await sign_in(page, email, PASSWORD)
            shown, fetched = [], []
            for _ in range(ROUNDS):
                fetched.append(await api_listing())
                await page.goto("/files")
                await page.get_by_role("link", name="thousand").wait_for()
                started = time.perf_counter()
                await page.get_by_role("link", name="thousand").click()
                await page.locator("table.listing tbody tr").nth(FILES - 1).wait_for()
                shown.append((time.perf_counter() - started) * 1000)
            await context.close()

    return [
        Figure("console_first_load_kib", first_load, "KiB", BUDGET_KIB, "the 300 KiB budget", target=1.0, lower_is_better=True,
               note="bytes on the wire (gzip where the browser asks) for a cold load of /signin: page, script, styles, the terms call"),
        Figure("console_files_page_ms", statistics.median(shown), "ms", statistics.median(fetched), "the SDK's ListFolder of the same folder",
               lower_is_better=True, note=f"median of {ROUNDS}: click on a folder of {FILES} files until its last row is in the page"),
    ]
