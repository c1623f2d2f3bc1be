"""Rows to protobuf messages."""

from __future__ import annotations

from typing import Any

from cumulo.blob.v1 import blob_pb2
from cumulo_platform.grpc_convert import timestamp

KINDS = {"folder": blob_pb2.NODE_KIND_FOLDER, "file": blob_pb2.NODE_KIND_FILE}


def node(row: Any) -> blob_pb2.Node:
    return blob_pb2.Node(
        node_id=str(row.node_id),
        parent_id=str(row.parent_id or ""),
        name=row.name,
        kind=KINDS[row.kind],
        size=row.size,
        sha256=row.sha256 or "",
        content_type=row.content_type,
        created_at=timestamp(row.created_at),
        modified_at=timestamp(row.modified_at),
        trashed_at=timestamp(row.trashed_at),
        blocked=row.blocked,
    )


def link(row: Any, name: str, *, token: str = "") -> blob_pb2.ShareLink:
    return blob_pb2.ShareLink(
        link_id=str(row.link_id),
        node_id=str(row.node_id),
        token=token,
        created_at=timestamp(row.created_at),
        expires_at=timestamp(row.expires_at),
        password_protected=row.password_hash is not None,
        name=name,
    )


def plan(row: Any, next_price: Any = None, versions: tuple[int, int] = (0, 0)) -> blob_pb2.Plan:
    return blob_pb2.Plan(
        plan_id=row.plan_id, name=row.name, bytes=row.bytes, price_version=row.version,
        price_minor_units=row.price_minor_units, currency=row.currency, period_days=row.period_days,
        applies_at=timestamp(row.applies_at), next=plan(next_price) if next_price is not None else None,
        bought_price_version=versions[0], accepted_price_version=versions[1],
    )


def purchase(row: Any) -> blob_pb2.Purchase:
    return blob_pb2.Purchase(
        purchase_id=str(row.purchase_id), plan_id=row.plan_id, bytes=row.bytes, price_version=row.price_version,
        price_minor_units=row.price_minor_units, currency=row.currency,
        starts_at=timestamp(row.starts_at), ends_at=timestamp(row.ends_at),
    )


def user_share(row: Any, *, for_owner: bool) -> blob_pb2.UserShare:
    return blob_pb2.UserShare(
        share_id=str(row.share_id), node_id=str(row.node_id), name=row.name,
        recipient=row.recipient if for_owner else "", created_at=timestamp(row.created_at),
    )
