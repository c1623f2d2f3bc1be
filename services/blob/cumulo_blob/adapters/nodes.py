"""Loading files and folders, as every capability does: always scoped by the account (another
account's node looks exactly like a missing one), and "live" meaning neither the node nor a
folder above it is in the trash. `conn` is a read connection or a unit of work."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cumulo_blob.adapters.tables import nodes
from cumulo_platform.errors import AlreadyExists, FailedPrecondition, NotFound, parse_id

# A node with whether it and all its ancestors are live (not trashed).
LIVE_CHAIN = sa.text(
    """
    WITH RECURSIVE chain AS (
        SELECT node_id, parent_id, kind, trashed_at, 0 AS depth FROM blob.nodes
        WHERE node_id = :node_id AND account_id = :account_id
        UNION ALL
        SELECT n.node_id, n.parent_id, n.kind, n.trashed_at, c.depth + 1 FROM blob.nodes n
        JOIN chain c ON n.node_id = c.parent_id
        WHERE c.depth < 10000
    )
    SELECT (SELECT kind FROM chain WHERE depth = 0) AS kind,
           bool_and(trashed_at IS NULL) AS live
    FROM chain HAVING count(*) > 0
    """
)

_ANCESTORS = sa.text(
    """
    WITH RECURSIVE chain AS (
        SELECT node_id, parent_id FROM blob.nodes WHERE node_id = :node_id
        UNION
        SELECT n.node_id, n.parent_id FROM blob.nodes n JOIN chain c ON n.node_id = c.parent_id
    )
    SELECT node_id FROM chain
    """
)


def node_id(value: str, field: str) -> uuid.UUID:
    return parse_id(value, field, "a node id")


def folder_id(value: str, field: str) -> uuid.UUID | None:
    """A folder named by the caller; "" is the root folder (None)."""
    if value == "":
        return None
    return parse_id(value, field, "a node id or empty for the root folder")


def name_clash(exc: IntegrityError, name: str, field: str = "name") -> AlreadyExists | None:
    """The NAME_TAKEN answer when `exc` is the one-live-name-per-folder index refusing."""
    if "nodes_live_name" in str(exc.orig):
        return name_taken(name, field)
    return None


def name_taken(name: str, field: str = "name") -> AlreadyExists:
    return AlreadyExists(f"{field}: {name!r} already exists in this folder", reason="NAME_TAKEN", metadata={"field": field})


def _not_found() -> NotFound:
    return NotFound("no such file or folder", reason="NODE_NOT_FOUND")


async def load(conn: Any, account: uuid.UUID, target: uuid.UUID, *, lock: bool = False) -> Any:
    """The account's node, itself not trashed (a folder above it may be)."""
    query = sa.select(nodes).where(nodes.c.node_id == target, nodes.c.account_id == account, nodes.c.trashed_at.is_(None))
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise _not_found()
    return row


async def load_visible(conn: Any, account: uuid.UUID, target: uuid.UUID, *, lock: bool = False) -> Any:
    """A node the caller sees: not inside a trashed folder either (there it is gone from the
    caller's view; Restore brings the folder back first)."""
    node = await load(conn, account, target, lock=lock)
    try:
        await check_folder(conn, account, node.parent_id, "node_id")
    except (NotFound, FailedPrecondition):
        raise _not_found() from None
    return node


async def check_folder(conn: Any, account: uuid.UUID, folder: uuid.UUID | None, field: str) -> None:
    """A live folder of the account (or the root); a trashed ancestor makes it not live."""
    if folder is None:
        return
    row = (await conn.execute(LIVE_CHAIN, {"node_id": folder, "account_id": account})).first()
    if row is None or (row.kind == "folder" and not row.live):
        raise NotFound(f"{field}: no such folder", reason="FOLDER_NOT_FOUND", metadata={"field": field})
    if row.kind != "folder":
        raise FailedPrecondition(f"{field}: is a file, not a folder", reason="NOT_A_FOLDER", metadata={"field": field})


async def is_live(conn: Any, account: uuid.UUID, target: uuid.UUID) -> bool:
    """Whether the account's node exists with nothing above it (nor itself) in the trash."""
    row = (await conn.execute(LIVE_CHAIN, {"node_id": target, "account_id": account})).first()
    return row is not None and bool(row.live)


async def ancestors(conn: Any, target: uuid.UUID) -> list[uuid.UUID]:
    """The node and every folder above it."""
    return list((await conn.execute(_ANCESTORS, {"node_id": target})).scalars().all())
