"""A data service's part of an evidence bundle (§3.3.1, §6.7: preserved for the authorities): moderation asks each service
through `EvidenceInternalService.ExportAccount`; the service streams the account's rows as JSON
lines straight into the preservation bucket (multipart, hashed on the way, never the whole
part in memory) and answers where it is, its size and its SHA-256, for the bundle's manifest."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import sqlalchemy as sa

from cumulo.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from cumulo_platform.db import Database
from cumulo_platform.errors import parse_id
from cumulo_platform.runtime import GrpcService
from cumulo_platform.storage import Storage

SERVICE = "cumulo.evidence.v1.EvidenceInternalService"
PART = 8 * 1024 * 1024  # bytes per multipart part (S3 wants at least 5 MiB but for the last)

# The rows of one account, as dictionaries of JSON-able values (bytes, UUIDs and times are
# converted on the way).
Rows = Callable[[uuid.UUID], AsyncIterator[dict[str, Any]]]


def evidence_prefix(account_id: Any, export_id: Any) -> str:
    return f"evidence/{account_id}/{export_id}/"


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, (uuid.UUID, dt.datetime, dt.date)):
        return str(value)
    return value


def json_line(row: dict[str, Any]) -> bytes:
    """One row as a line of JSON (keys sorted, bytes as base64, ids and times as text)."""
    return (json.dumps({k: _plain(v) for k, v in row.items()}, sort_keys=True, ensure_ascii=False) + "\n").encode()


async def write_jsonl(storage: Storage, key: str, rows: AsyncIterator[dict[str, Any]]) -> tuple[int, str, int]:
    """(size, SHA-256, lines) of the JSON-lines object written at `key`."""
    lines = 0
    async with storage.writer(key, part_size=PART) as writer:
        async for row in rows:
            await writer.write(json_line(row))
            lines += 1
    return writer.size, writer.sha256, lines


class EvidenceInternalService(evidence_pb2_grpc.EvidenceInternalServiceServicer):
    def __init__(self, service: str, storage: Storage, rows: Rows) -> None:
        self.service = service
        self.storage = storage
        self.rows = rows

    async def ExportAccount(
        self, request: evidence_pb2.ExportAccountRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.ExportAccountResponse:
        account = parse_id(request.account_id, "account_id", "an account id (UUID)")
        export = parse_id(request.export_id, "export_id", "an export id (UUID)")
        key = evidence_prefix(account, export) + f"{self.service}.jsonl"
        size, sha256, items = await write_jsonl(self.storage, key, self.rows(account))
        return evidence_pb2.ExportAccountResponse(bucket=self.storage.bucket, key=key, size=size, sha256=sha256, items=items)


def evidence_service(service: str, storage: Storage, rows: Rows) -> GrpcService:
    """The GrpcService to add to a service's runtime."""
    return GrpcService(SERVICE, EvidenceInternalService(service, storage, rows), evidence_pb2_grpc.add_EvidenceInternalServiceServicer_to_server)


async def paged(db: Database, statement: sa.Select[Any], keys: list[sa.Column[Any]], *, kind: str, size: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """The rows of `statement` in pages ordered by `keys` (a unique key), each a dictionary
    with `kind` added: a big table is read a page at a time, not held open in one cursor."""
    last: list[Any] | None = None
    while True:
        query = statement.order_by(*keys).limit(size)
        if last is not None:
            query = query.where(sa.tuple_(*keys) > sa.tuple_(*[sa.bindparam(None, v, type_=k.type) for k, v in zip(keys, last)]))
        async with db.read() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            yield {"kind": kind, **row._mapping}
        if len(rows) < size:
            return
        last = [rows[-1]._mapping[k.name] for k in keys]
