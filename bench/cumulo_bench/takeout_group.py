"""Group `takeout`: a take-out of an account holding 1 GiB (one file, and some sync records)
while the blob process's RSS is sampled, beside the raw building block: the same bytes read
from S3 and written back as a multipart upload by aiobotocore, in the same run."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import time

import psutil
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from cumulo.sync.v1 import sync_pb2
from cumulo.takeout.v1 import takeout_pb2
from cumulo_bench.blob_group import HUGE, MIB, PASSWORD, _write_random
from cumulo_bench.report import Figure
from cumulo_bench.stack import BenchStack
from cumulo_sdk import Cumulo

PART = 8 * MIB


async def _direct_copy(stack: BenchStack, source_key: str) -> float:
    """MiB/s of reading the stored object and writing it back as a multipart upload of 8 MiB
    parts (what an export does with a file's bytes, with no service around it)."""
    s3 = stack.infra.s3
    config = AioConfig(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                       s3={"addressing_style": "path"})
    async with get_session().create_client(
        "s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
        region_name="us-east-1", config=config,
    ) as client:
        started = time.perf_counter()
        upload = await client.create_multipart_upload(Bucket="cumulo-blobs", Key="bench/direct-copy.tar")
        response = await client.get_object(Bucket="cumulo-blobs", Key=source_key)
        body = response["Body"]
        parts: list[dict[str, object]] = []
        pending = bytearray()
        while chunk := await body.read(2 * MIB):
            pending += chunk
            if len(pending) >= PART:
                done = await client.upload_part(Bucket="cumulo-blobs", Key="bench/direct-copy.tar", UploadId=upload["UploadId"],
                                                PartNumber=len(parts) + 1, Body=bytes(pending))
                parts.append({"PartNumber": len(parts) + 1, "ETag": done["ETag"]})
                pending.clear()
        if pending:
            done = await client.upload_part(Bucket="cumulo-blobs", Key="bench/direct-copy.tar", UploadId=upload["UploadId"],
                                            PartNumber=len(parts) + 1, Body=bytes(pending))
            parts.append({"PartNumber": len(parts) + 1, "ETag": done["ETag"]})
        await client.complete_multipart_upload(Bucket="cumulo-blobs", Key="bench/direct-copy.tar", UploadId=upload["UploadId"],
                                               MultipartUpload={"Parts": parts})
        seconds = time.perf_counter() - started
        await client.delete_object(Bucket="cumulo-blobs", Key="bench/direct-copy.tar")
    return HUGE / MIB / seconds


async def _stored_key(stack: BenchStack, account_id: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(stack.asyncpg_dsn("blob"))
    try:
        return str(await conn.fetchval("SELECT s3_key FROM blob.contents WHERE account_id = $1 LIMIT 1", account_id))
    finally:
        await conn.close()


async def run(stack: BenchStack) -> list[Figure]:
    backends = stack.start_services(CUMULO_BLOB_TAKEOUT_EVERY="PT0.2S")
    gateway = stack.start_gateway(backends)
    huge = stack.root / "huge.bin"
    print("  writing 1 GiB ...", file=sys.stderr, flush=True)
    _write_random(huge, HUGE)
    async with Cumulo(gateway, transport=stack.transport(gateway)) as client:
        email = f"bench-takeout-{dt.datetime.now().timestamp():.0f}@example.com"
        await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
        account = await client.login(email, PASSWORD, device_name="bench")
        print("  uploading it, and 10,000 sync records ...", file=sys.stderr, flush=True)
        await client.files.upload(huge)
        for batch in range(25):
            saves = [sync_pb2.RecordSave(record_id=f"r{batch}-{i}", record_type="note", payload=b'{"n": 1}' * 8) for i in range(400)]
            await client.sync.push("notes", saves)
        huge.unlink()

        blob_server = stack.processes["blob"].process
        assert blob_server is not None
        blob_process = psutil.Process(blob_server.pid)
        idle = peak = blob_process.memory_info().rss
        print("  take-out (blob RSS sampled) ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        export = await client.takeout.start()
        while export.state not in (takeout_pb2.EXPORT_STATE_READY, takeout_pb2.EXPORT_STATE_FAILED):
            peak = max(peak, blob_process.memory_info().rss)
            await asyncio.sleep(0.05)
            export = await client.takeout.get(export.export_id)
        seconds = time.perf_counter() - started
        assert export.state == takeout_pb2.EXPORT_STATE_READY, export
        print("  direct S3 copy of the same bytes ...", file=sys.stderr, flush=True)
        direct = await _direct_copy(stack, await _stored_key(stack, account.account_id))
    size = sum(a.size for a in export.archives)
    return [
        Figure("export_rss_mib", peak / MIB, "MiB", 200.0, "the 200 MiB limit", target=1.0, lower_is_better=True,
               note=f"blob process while a 1 GiB take-out is written ({size / MIB:.0f} MiB of archives; idle: {idle / MIB:.0f} MiB)"),
        Figure("export_ratio", HUGE / MIB / seconds, "MiB/s", direct, "aiobotocore get_object + multipart put of the same bytes",
               note="from StartExport to READY (asked through the gateway, polled every 50 ms): the parts of every service, "
               "10,000 sync records and 1 GiB of files into tar archives in S3"),
    ]
