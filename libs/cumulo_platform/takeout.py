"""A data service's part of a take-out (the owner's copy of their account): blob asks each
service through `TakeoutInternalService.ExportPart` and writes what it answers into the
archive. A service names its parts (JSON-lines files, e.g. "sync/zones/photos.jsonl") and
gives their rows; they are streamed as they are read, a page at a time, never whole."""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import sqlalchemy as sa

from cumulo.takeout.v1 import takeout_pb2, takeout_pb2_grpc
from cumulo_platform.errors import parse_id
from cumulo_platform.evidence import json_line
from cumulo_platform.runtime import GrpcService

SERVICE = "cumulo.takeout.v1.TakeoutInternalService"
CHUNK = 256 * 1024  # bytes of JSON lines per message (well under gRPC's 4 MiB)

# (name, rows) of each part of an account; a part with no rows is still named (an empty file
# says "none" better than a missing one).
Part = tuple[str, AsyncIterator[dict[str, Any]]]
Parts = Callable[[uuid.UUID], AsyncIterator[Part]]


# Columns never exported, whatever table they are in: what would let someone act as the owner
# or read what the owner cannot (hashes of passwords and codes, sealed secrets, tokens).
_SECRET_MARKS = ("password", "hash", "digest", "sealed", "secret", "token", "code")


def exported_columns(table: sa.Table, *, leave_out: tuple[str, ...] = ()) -> list[sa.Column[Any]]:
    """The columns of `table` fit for its owner's take-out: all but secrets and `leave_out`."""
    return [c for c in table.columns if c.name not in leave_out and not any(mark in c.name for mark in _SECRET_MARKS)]


def safe_name(name: str) -> str:
    """A part's name as a relative path inside the archive, refused if it could leave it."""
    normal = posixpath.normpath(name)
    if not name or normal != name or name.startswith("/") or normal.startswith(".."):
        raise ValueError(f"a take-out part needs a plain relative name, not {name!r}")
    return name


async def chunks(parts: AsyncIterator[Part]) -> AsyncIterator[takeout_pb2.ExportPartResponse]:
    async for name, rows in parts:
        safe_name(name)
        pending = bytearray()
        sent = False
        async for row in rows:
            pending += json_line(row)
            if len(pending) >= CHUNK:
                yield takeout_pb2.ExportPartResponse(name=name, data=bytes(pending))
                pending.clear()
                sent = True
        if pending or not sent:
            yield takeout_pb2.ExportPartResponse(name=name, data=bytes(pending))


class TakeoutInternalService(takeout_pb2_grpc.TakeoutInternalServiceServicer):
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    async def ExportPart(
        self, request: takeout_pb2.ExportPartRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[takeout_pb2.ExportPartResponse]:
        account = parse_id(request.account_id, "account_id", "an account id (UUID)")
        async for message in chunks(self.parts(account)):
            yield message


def takeout_service(parts: Parts) -> GrpcService:
    """The GrpcService to add to a service's runtime."""
    return GrpcService(SERVICE, TakeoutInternalService(parts), takeout_pb2_grpc.add_TakeoutInternalServiceServicer_to_server)
