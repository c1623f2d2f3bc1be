"""Files and folders of the caller's own account: create, list, look at, rename and move.
Every query is scoped by the caller's account id. Folders nest at most `max_depth` deep:
creations and moves are checked under the account's tree lock (creations share it, a move
takes it alone), so no two of them can together go past the limit."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cumulo_blob.adapters import nodes as tree
from cumulo_blob.adapters.tables import nodes
from cumulo_blob.domain import names
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import FailedPrecondition
from cumulo_platform.paging import decode_token, encode_token, page_size

MAX_PAGE = 1000
DEFAULT_PAGE = 100

# How many folder levels a folder holds, itself included (trashed ones too: they come back
# where they were): a move adds them all below the new parent. Stops past `limit`.
_FOLDER_HEIGHT = sa.text(
    """
    WITH RECURSIVE below AS (
        SELECT node_id, 1 AS level FROM blob.nodes WHERE node_id = :node_id AND account_id = :account_id
        UNION ALL
        SELECT n.node_id, b.level + 1 FROM blob.nodes n JOIN below b ON n.parent_id = b.node_id
        WHERE n.kind = 'folder' AND b.level <= :limit
    )
    SELECT max(level) FROM below
    """
)


def listing_size(value: int) -> int:
    return page_size(value, default=DEFAULT_PAGE, maximum=MAX_PAGE, field="page_size")


def _tree_lock(account: uuid.UUID) -> dict[str, str]:
    return {"key": f"move:{account}"}


class Folders:
    def __init__(self, *, db: Database, clock: Clock, max_depth: int = names.MAX_FOLDER_DEPTH) -> None:
        self.db = db
        self.clock = clock
        self.max_depth = max_depth

    async def create_folder(self, account: uuid.UUID, parent_id: str, name: str) -> Any:
        parent = tree.folder_id(parent_id, "parent_id")
        clean = names.check_name(name)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            # Shared: creations go on side by side; a move (which deepens a whole subtree) waits.
            await uow.execute(sa.text("SELECT pg_advisory_xact_lock_shared(hashtext(:key))"), _tree_lock(account))
            await tree.check_folder(uow, account, parent, "parent_id")
            depth = 0 if parent is None else len(await tree.ancestors(uow, parent))
            names.check_depth(depth + 1, self.max_depth, "parent_id")
            try:
                row = (
                    await uow.execute(
                        sa.insert(nodes)
                        .values(node_id=uuid.uuid4(), account_id=account, parent_id=parent, name=clean, kind="folder",
                                created_at=now, modified_at=now)
                        .returning(*nodes.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise tree.name_clash(exc, clean) or exc from None
            await uow.commit()
        return row

    async def list_folder(self, account: uuid.UUID, folder_id: str, size: int, page_token: str) -> tuple[list[Any], str]:
        folder = tree.folder_id(folder_id, "folder_id")
        limit = listing_size(size)
        async with self.db.read() as conn:
            await tree.check_folder(conn, account, folder, "folder_id")
            is_file = nodes.c.kind == "file"
            query = (
                sa.select(nodes)
                .where(
                    nodes.c.account_id == account,
                    nodes.c.parent_id.is_(None) if folder is None else nodes.c.parent_id == folder,
                    nodes.c.trashed_at.is_(None),
                )
                .order_by(is_file, nodes.c.name)
                .limit(limit + 1)
            )
            if page_token:
                after_is_file, after_name = decode_token(page_token, bool, str)
                query = query.where(sa.tuple_(is_file, nodes.c.name) > sa.tuple_(sa.literal(bool(after_is_file)), sa.literal(str(after_name))))
            rows = list((await conn.execute(query)).all())
        more = len(rows) > limit
        rows = rows[:limit]
        token = encode_token([rows[-1].kind == "file", rows[-1].name]) if more else ""
        return rows, token

    async def stat(self, account: uuid.UUID, node_id: str) -> Any:
        target = tree.node_id(node_id, "node_id")
        async with self.db.read() as conn:
            row = await tree.load(conn, account, target)
            await tree.check_folder(conn, account, row.parent_id, "node_id")
        return row

    async def rename(self, account: uuid.UUID, node_id: str, new_name: str) -> Any:
        target = tree.node_id(node_id, "node_id")
        clean = names.check_name(new_name, "new_name")
        async with self.db.unit_of_work() as uow:
            await tree.load_visible(uow, account, target, lock=True)
            try:
                row = (
                    await uow.execute(
                        sa.update(nodes).where(nodes.c.node_id == target)
                        .values(name=clean, modified_at=self.clock.now()).returning(*nodes.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise tree.name_clash(exc, clean, "new_name") or exc from None
            await uow.commit()
        return row

    async def move(self, account: uuid.UUID, node_id: str, new_parent_id: str) -> Any:
        target = tree.node_id(node_id, "node_id")
        parent = tree.folder_id(new_parent_id, "new_parent_id")
        async with self.db.unit_of_work() as uow:
            # Folder moves of one account, one at a time: two crossing moves cannot make a cycle
            # nor together a tree too deep; creations wait (they take the lock shared).
            await uow.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), _tree_lock(account))
            node = await tree.load_visible(uow, account, target, lock=True)
            await tree.check_folder(uow, account, parent, "new_parent_id")
            above = [] if parent is None else await tree.ancestors(uow, parent)
            if node.kind == "folder" and target in above:
                raise FailedPrecondition("new_parent_id: a folder cannot move into itself", reason="MOVE_INTO_ITSELF",
                                         metadata={"field": "new_parent_id"})
            if node.kind == "folder":
                height = (
                    await uow.execute(_FOLDER_HEIGHT, {"node_id": target, "account_id": account, "limit": self.max_depth})
                ).scalar_one()
                names.check_depth(len(above) + height, self.max_depth, "new_parent_id")
            try:
                row = (
                    await uow.execute(
                        sa.update(nodes).where(nodes.c.node_id == target)
                        .values(parent_id=parent, modified_at=self.clock.now()).returning(*nodes.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise tree.name_clash(exc, node.name) or exc from None
            await uow.commit()
        return row
