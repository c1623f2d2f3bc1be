"""Group `blob`: a 256 MiB file up and down through gateway → blob → S3 beside aiobotocore
put/get of the same bytes against the same S3 server; an instant upload of known 1 GiB
content; the blob process's peak RSS while 1 GiB streams through it."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import statistics
import sys
import time

import psutil
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from cumulo.blob.v1 import blob_pb2
from cumulo_bench.report import Figure
from cumulo_bench.stack import BenchStack
from cumulo_devstack.servers import EmbeddedS3, free_port
from cumulo_sdk import Cumulo

MIB = 1024 * 1024
BIG = 256 * MIB
HUGE = 1024 * MIB
PASSWORD = "benchmark passphrase 2026"
ROUNDS = 3


def _write_random(path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, 8 * MIB))
            handle.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


async def _direct_s3(stack: BenchStack, path, s3: EmbeddedS3) -> tuple[float, float]:
    """The raw building block with the same client-side duties as cumulo's path: the file is
    read from disk and its SHA-256 computed before it is stored; on the way back the bytes
    are hashed and written to disk. Only the service hops differ."""
    config = AioConfig(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                       s3={"addressing_style": "path"})
    async with get_session().create_client(
        "s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
        region_name="us-east-1", config=config, verify=str(s3.tls.ca) if s3.tls else None,
    ) as client:
        try:
            await client.create_bucket(Bucket="bench-direct")
        except Exception:
            pass
        started = time.perf_counter()
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        await client.put_object(Bucket="bench-direct", Key="big", Body=data)
        put_seconds = time.perf_counter() - started
        del data
        started = time.perf_counter()
        response = await client.get_object(Bucket="bench-direct", Key="big")
        body = response["Body"]
        digest = hashlib.sha256()
        with open(stack.root / "direct.back", "wb") as handle:
            while chunk := await body.read(MIB):
                digest.update(chunk)
                handle.write(chunk)
        get_seconds = time.perf_counter() - started
    return BIG / MIB / put_seconds, BIG / MIB / get_seconds


def _new_content(path) -> None:
    """The file's first bytes changed: an upload of it is not an instant one."""
    with open(path, "r+b") as handle:
        handle.write(os.urandom(64))


async def run(stack: BenchStack) -> list[Figure]:
    backends = stack.start_services()
    gateway = stack.start_gateway(backends)
    # The same store's folder, served by a second rclone over HTTPS with the session's certificate.
    tls_store = EmbeddedS3(stack.infra.s3.root, free_port(), stack.root / "s3-https.log", tls=stack.infra.tls)
    tls_store.start()
    try:
        return await _measure(stack, gateway, tls_store)
    finally:
        tls_store.stop()


async def _measure(stack: BenchStack, gateway: str, tls_store: EmbeddedS3) -> list[Figure]:
    big = stack.root / "big.bin"
    huge = stack.root / "huge.bin"
    print("  writing test files ...", file=sys.stderr, flush=True)
    _write_random(big, BIG)
    huge_sha = _write_random(huge, HUGE)

    async with Cumulo(gateway, transport=stack.transport(gateway)) as client:
        email = f"bench-blob-{dt.datetime.now().timestamp():.0f}@example.com"
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
        await client.login(email, PASSWORD, device_name="bench")

        # Rounds that take turns with the raw building block, medians of each: this machine's
        # disk and S3 speeds drift within a run, and one pass each compared different moments.
        # The building block is met twice: over HTTPS (an object store a client reaches over a
        # network, as cumulo's clients reach the gateway: the client decrypts in both) and over
        # plain loopback HTTP (what no client outside the machine gets), for the record.
        rates: dict[str, list[float]] = {key: [] for key in ("tls_put", "tls_get", "plain_put", "plain_get", "up", "down")}
        for round_ in range(ROUNDS):
            print(f"  round {round_ + 1}/{ROUNDS}: direct S3 (HTTPS, HTTP) put/get, then cumulo's up/down of 256 MiB ...",
                  file=sys.stderr, flush=True)
            for kind, store in (("tls", tls_store), ("plain", stack.infra.s3)):
                put, get = await _direct_s3(stack, big, store)
                rates[f"{kind}_put"].append(put)
                rates[f"{kind}_get"].append(get)
            _new_content(big)
            started = time.perf_counter()
            node = await client.files.upload(big, name=f"big-{round_}.bin")
            rates["up"].append(BIG / MIB / (time.perf_counter() - started))
            started = time.perf_counter()
            await client.files.download(node.node_id, stack.root / "big.back")
            rates["down"].append(BIG / MIB / (time.perf_counter() - started))
        median = {key: statistics.median(values) for key, values in rates.items()}

        print("  1 GiB upload (blob RSS sampled) ...", file=sys.stderr, flush=True)
        blob_server = stack.processes["blob"].process
        assert blob_server is not None  # start_services started it
        blob_process = psutil.Process(blob_server.pid)
        idle = peak = blob_process.memory_info().rss
        uploading = asyncio.create_task(client.files.upload(huge))
        while not uploading.done():
            peak = max(peak, blob_process.memory_info().rss)
            await asyncio.sleep(0.05)
        await uploading

        print("  instant upload of the known 1 GiB content ...", file=sys.stderr, flush=True)
        timings = []
        for attempt in range(5):
            started = time.perf_counter()
            response = await client.call(
                client.files.stub.StartUpload,
                blob_pb2.StartUploadRequest(name=f"again-{attempt}.bin", size=HUGE, sha256=huge_sha),
            )
            timings.append((time.perf_counter() - started) * 1000)
            assert response.HasField("file"), "known content must complete at once"
        instant_ms = sorted(timings)[len(timings) // 2]

    return [
        Figure("upload_ratio", median["up"], "MiB/s", median["tls_put"], "aiobotocore put_object over HTTPS (file read + SHA-256)",
               target=0.7, note=f"256 MiB file, SDK -> gateway (TLS) -> blob -> S3 multipart, SHA-256 checked by the service; medians of {ROUNDS} rounds"),
        Figure("download_ratio", median["down"], "MiB/s", median["tls_get"], "aiobotocore get_object over HTTPS (SHA-256 + file write)",
               target=0.9, note=f"256 MiB, the SDK's default path: a signed URL from blob, then S3 -> gateway (TLS) -> SDK, which verifies SHA-256 and writes the file; medians of {ROUNDS} rounds"),
        Figure("upload_vs_plain_s3", median["up"], "MiB/s", median["plain_put"], "aiobotocore put_object over loopback HTTP",
               note="the same uploads against a store no client outside the machine reaches: what TLS at the edge costs on top"),
        Figure("download_vs_plain_s3", median["down"], "MiB/s", median["plain_get"], "aiobotocore get_object over loopback HTTP",
               note="the same downloads against a store no client outside the machine reaches: what TLS at the edge costs on top"),
        Figure("instant_upload_ms", instant_ms, "ms", 100.0, "the 100 ms limit", target=1.0, lower_is_better=True,
               note="median StartUpload of known 1 GiB content through the gateway"),
        Figure("blob_peak_rss_mib", peak / MIB, "MiB", 200.0, "the 200 MiB limit", target=1.0, lower_is_better=True,
               note=f"blob process while 1 GiB streams through it (idle: {idle / MIB:.0f} MiB)"),
    ]
