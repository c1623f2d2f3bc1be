"""Looking records up by id costs a probe per id, whatever the planner's statistics say of the
zone: a zone that grew after the table was last analyzed must not be walked row by row."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from cumulo_sync.adapters.tables import records_by_id
from cumulo_sync.pushes import _CURRENT

from .test_records import save

# Rows of another zone of the account, so that the table is large enough for its indexes to
# matter, whatever other tests left in it.
BULK = 20_000


async def test_records_are_found_by_primary_key_probes_in_a_zone_the_statistics_do_not_know(phone, sync) -> None:
    await phone.client.sync.push("contacts", [save(f"c{i}", b"x") for i in range(3)])
    await phone.client.sync.push("bulk", [save("seed", b"x")])
    account = uuid.UUID(phone.account_id)
    async with sync.app.db.unit_of_work() as uow:
        zone_ids = dict((await uow.execute(sa.text("SELECT name, zone_id FROM sync.zones WHERE account_id = :a"), {"a": account})).all())
        await uow.execute(
            sa.text(
                "INSERT INTO sync.records (account_id, zone_id, record_id, record_type, payload, seq, modified_at)"
                " SELECT :account, :zone, 'bulk' || n, 'contact', '\\x00', n + 1, now() FROM generate_series(1, :count) AS n"
            ),
            {"account": account, "zone": zone_ids["bulk"], "count": BULK},
        )
        await uow.commit()
    async with sync.app.db.read() as conn:
        # The statistics, taken now, hold the zone as (nearly) empty, as they do a new
        # account's zone before its first big sync.
        await conn.execute(sa.text("ANALYZE sync.records"))
        ids = [f"c{i}" for i in range(400)]
        for statement in (_CURRENT, records_by_id()):
            params = {"account_id": account, "zone_id": zone_ids["contacts"], "ids": ids}
            explained = await conn.execute(sa.text(f"EXPLAIN {statement.text}"), params)
            plan = "\n".join(r[0] for r in explained)
            # Every id is its own probe of the primary key (account_id, zone_id, record_id) ...
            assert "Nested Loop" in plan and "records_pkey" in plan, plan
            probes = [line for line in plan.splitlines() if "Index Cond" in line]
            assert len(probes) == 1 and "record_id = wanted.record_id" in probes[0], plan
            # ... never a walk of the zone's rows, each compared with the list.
            assert "Filter" not in plan and "Hash" not in plan, plan
        found = (await conn.execute(_CURRENT, {"account_id": account, "zone_id": zone_ids["contacts"], "ids": ["c0", "c2", "nope"]})).all()
    assert sorted(r.record_id for r in found) == ["c0", "c2"]


async def test_get_records_answers_each_record_once_whatever_the_ids_repeat(phone) -> None:
    await phone.client.sync.push("notes", [save("a", b"1"), save("b", b"2")])
    found = await phone.client.sync.get("notes", ["a", "a", "missing", "b", "a"])
    assert sorted((r.record_id, r.payload) for r in found) == [("a", b"1"), ("b", b"2")]
