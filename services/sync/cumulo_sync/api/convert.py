"""Rows to protobuf messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cumulo.sync.v1 import sync_pb2
from cumulo_platform.grpc_convert import timestamp
from cumulo_sync.domain import rules
from cumulo_sync.pushes import CONFLICT, DELETED, NOT_APPLIED, SAVED, Result

STATUSES = {
    SAVED: sync_pb2.PUSH_STATUS_SAVED,
    DELETED: sync_pb2.PUSH_STATUS_DELETED,
    CONFLICT: sync_pb2.PUSH_STATUS_CONFLICT,
    NOT_APPLIED: sync_pb2.PUSH_STATUS_NOT_APPLIED,
}


def zone(row: Any) -> sync_pb2.Zone:
    return sync_pb2.Zone(
        name=row.name, record_count=row.record_count, bytes=row.bytes,
        created_at=timestamp(row.created_at), modified_at=timestamp(row.modified_at),
    )


def record(row: Any) -> sync_pb2.Record:
    return sync_pb2.Record(
        record_id=row.record_id,
        record_type=row.record_type,
        payload=row.payload,
        change_tag=rules.change_tag(row.seq) if row.seq else "",
        modified_at=timestamp(row.modified_at),
        deleted=row.deleted,
        modified_by_device=row.modified_by,
    )


def add_results(results: Any, items: Iterable[Result]) -> None:
    """Each push result added to `results` (a response's repeated field): adding in place
    costs a third less than building messages and handing the list over, on 400 a push."""
    add = results.add
    for item in items:
        tag = rules.change_tag(item.seq) if item.seq > 0 else ""
        if item.server is None:
            add(record_id=item.record_id, status=STATUSES[item.status], change_tag=tag)
        else:
            add(record_id=item.record_id, status=STATUSES[item.status], change_tag=tag, server_record=record(item.server))


def backup(row: Any) -> sync_pb2.Backup:
    return sync_pb2.Backup(
        backup_id=str(row.backup_id), device_id=row.device_id, device_name=row.device_name,
        created_at=timestamp(row.created_at), entry_count=row.entry_count, total_size=row.total_size,
    )


def entry(row: Any) -> sync_pb2.BackupEntry:
    return sync_pb2.BackupEntry(path=row.path, file_id=str(row.file_id), size=row.size, sha256=row.sha256)
