"""The moderation audit log is append-only: no RPC changes or deletes an entry, and the
table refuses UPDATE, DELETE and TRUNCATE even from the service's own connection."""

from __future__ import annotations

import re
import secrets

import pytest
import sqlalchemy as sa
import sqlalchemy.exc

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_moderation.adapters.tables import audit_log

from .helpers import me, sha256

# --- 1. the audit log is append-only --------------------------------------------------------------


AUDIT_CHANGING = re.compile(r"^(Update|Delete|Edit|Remove|Modify|Change|Erase|Purge|Truncate|Rewrite|Clear|Set|Put|Patch)", re.I)


async def test_no_rpc_changes_or_deletes_audit_entries():
    methods = {
        f"{service.name}/{method.name}": method
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert "ModerationService/ListAudit" in methods and "ModerationService/RemoveFromBlocklist" in methods
    audit_methods = [name for name in methods if "audit" in name.lower()]
    assert audit_methods == ["ModerationService/ListAudit"]
    for name, method in methods.items():
        about_audit = "AuditEntry" in {f.message_type.name for f in method.input_type.fields if f.message_type is not None}
        assert not about_audit, f"{name} takes an audit entry"
        if AUDIT_CHANGING.match(method.name):
            # The changing calls are about other things, never the audit log.
            assert "audit" not in method.name.lower() and "audit" not in method.input_type.name.lower(), name
    assert {name for name, m in methods.items() if AUDIT_CHANGING.match(m.name)} == {
        "ModerationService/SetLegalHold", "ModerationService/RemoveFromBlocklist"
    }


async def test_the_audit_log_refuses_update_delete_and_truncate_even_from_the_service(moderator, moderation):
    digest = sha256(secrets.token_bytes(16))
    await moderator.moderation.block_hashes([digest], "an entry to try to erase")
    async with moderation.app.db.read() as conn:
        before = (await conn.execute(sa.select(audit_log).where(audit_log.c.target == f"sha256:{digest}"))).one()
        count = (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar_one()
    attempts = [
        sa.update(audit_log).where(audit_log.c.audit_id == before.audit_id).values(reason="nothing happened", actor="nobody"),
        sa.delete(audit_log).where(audit_log.c.audit_id == before.audit_id),
        sa.delete(audit_log),
        sa.text("TRUNCATE moderation.audit_log"),
    ]
    for statement in attempts:
        with pytest.raises(sqlalchemy.exc.DBAPIError) as refused:
            async with moderation.app.db.unit_of_work() as uow:
                await uow.execute(statement)
                await uow.commit()
        assert "append-only" in str(refused.value), statement
    async with moderation.app.db.read() as conn:
        after = (await conn.execute(sa.select(audit_log).where(audit_log.c.audit_id == before.audit_id))).one()
        assert (await conn.execute(sa.select(sa.func.count()).select_from(audit_log))).scalar_one() >= count
    assert after == before
    listed = [e for e in await moderator.moderation.audit(limit=50) if e.audit_id == before.audit_id]
    assert len(listed) == 1 and listed[0].reason == "an entry to try to erase" and listed[0].actor == me(moderator)
