"""The client apps allowed to call cumulo (the CLI, the web console, partners' apps)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cumulo_auth.adapters.tables import client_apps
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument

CLIENT_ID_MAX_LENGTH = 64


class ClientApps:
    def __init__(self, *, db: Database) -> None:
        self.db = db

    async def find(self, client_id: str) -> tuple[str, bool] | None:
        """The app's name and whether it is enabled (None: no such app)."""
        async with self.db.sessions() as session:
            row = (await session.execute(sa.select(client_apps).where(client_apps.c.client_id == client_id))).first()
        return (row.name, row.enabled) if row else None

    async def registered(self, client_id: str) -> bool:
        found = await self.find(client_id)
        return bool(found and found[1])

    async def register(self, client_id: str, name: str, *, enable: bool = True) -> None:
        """Registers (or renames) a client app. `enable=False` leaves an existing app's
        enabled flag alone, so start-up registration never re-enables one an operator turned off."""
        if not client_id or len(client_id) > CLIENT_ID_MAX_LENGTH or not all(c.isalnum() or c in "-_." for c in client_id):
            raise InvalidArgument("client_id", f"must be 1-{CLIENT_ID_MAX_LENGTH} letters, digits, '-', '_' or '.'")
        if not name.strip():
            raise InvalidArgument("name", "must not be empty")
        async with self.db.unit_of_work() as uow:
            await uow.execute(
                pg_insert(client_apps)
                .values(client_id=client_id, name=name.strip())
                .on_conflict_do_update(
                    index_elements=["client_id"],
                    set_={"name": name.strip(), **({"enabled": True} if enable else {})},
                )
            )
            await uow.commit()
