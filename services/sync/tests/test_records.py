"""Record sync end to end through the gateway: push, pull, conflicts, tombstones, paging."""

from __future__ import annotations

import asyncio

import grpc

from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.testing import expect_error

SAVED, DELETED, CONFLICT, NOT_APPLIED = (
    sync_pb2.PUSH_STATUS_SAVED, sync_pb2.PUSH_STATUS_DELETED, sync_pb2.PUSH_STATUS_CONFLICT, sync_pb2.PUSH_STATUS_NOT_APPLIED,
)


def save(record_id: str, payload: bytes, tag: str = "", record_type: str = "contact") -> sync_pb2.RecordSave:
    return sync_pb2.RecordSave(record_id=record_id, record_type=record_type, payload=payload, change_tag=tag)


async def test_a_record_pushed_on_one_device_is_pulled_on_another(phone, laptop) -> None:
    pushed = await phone.client.sync.push("contacts", [save("ann", b'{"name": "Ann"}')], device_id="phone")
    assert [r.status for r in pushed.results] == [SAVED]
    records, token = await laptop.client.sync.fetch_all("contacts")
    assert [(r.record_id, r.payload, r.change_tag, r.modified_by_device) for r in records] == [
        ("ann", b'{"name": "Ann"}', pushed.results[0].change_tag, "phone")
    ]
    assert token == pushed.change_token
    again, same = await laptop.client.sync.fetch_all("contacts", token)
    assert again == [] and same == token
    zones = await laptop.client.sync.zones()
    assert [(z.name, z.record_count, z.bytes) for z in zones] == [("contacts", 1, 15)]


async def test_a_stale_change_tag_is_a_conflict_with_the_server_record(phone, laptop) -> None:
    first = await phone.client.sync.push("notes", [save("n1", b"v1", record_type="note")])
    tag = first.results[0].change_tag
    second = await phone.client.sync.push("notes", [save("n1", b"v2 from phone", tag, "note")])
    assert second.results[0].status == SAVED and second.results[0].change_tag != tag
    stale = await laptop.client.sync.push("notes", [save("n1", b"v2 from laptop", tag, "note")])
    result = stale.results[0]
    assert result.status == CONFLICT and result.change_tag == ""
    assert result.server_record.payload == b"v2 from phone"
    assert result.server_record.change_tag == second.results[0].change_tag
    # The laptop merges and saves on top of the server's tag.
    merged = await laptop.client.sync.push("notes", [save("n1", b"merged", result.server_record.change_tag, "note")])
    assert merged.results[0].status == SAVED
    (record,) = await phone.client.sync.get("notes", ["n1"])
    assert record.payload == b"merged"


async def test_creating_a_record_that_exists_is_a_conflict(phone, laptop) -> None:
    await phone.client.sync.push("contacts", [save("bob", b"phone's")])
    clash = await laptop.client.sync.push("contacts", [save("bob", b"laptop's")])
    assert clash.results[0].status == CONFLICT and clash.results[0].server_record.payload == b"phone's"


async def test_concurrent_writers_of_one_record_exactly_one_wins(phone, laptop) -> None:
    created = await phone.client.sync.push("contacts", [save("carol", b"v0")])
    tag = created.results[0].change_tag
    writers = [(phone if i % 2 else laptop).client.sync.push("contacts", [save("carol", f"writer {i}".encode(), tag)]) for i in range(12)]
    answers = await asyncio.gather(*writers)
    statuses = [a.results[0].status for a in answers]
    assert statuses.count(SAVED) == 1 and statuses.count(CONFLICT) == 11
    winner = next(a for a in answers if a.results[0].status == SAVED)
    (record,) = await phone.client.sync.get("contacts", ["carol"])
    assert record.change_tag == winner.results[0].change_tag
    losers = [a.results[0].server_record for a in answers if a.results[0].status == CONFLICT]
    assert all(r.change_tag == record.change_tag for r in losers)


async def test_concurrent_creates_of_one_record_exactly_one_wins(phone, laptop) -> None:
    answers = await asyncio.gather(*[
        (phone if i % 2 else laptop).client.sync.push("settings", [save("wifi", f"{i}".encode())]) for i in range(10)
    ])
    assert [a.results[0].status for a in answers].count(SAVED) == 1


async def test_an_atomic_batch_with_one_conflict_stores_nothing(phone, laptop) -> None:
    first = await phone.client.sync.push("calendar", [save("e1", b"a"), save("e2", b"b")])
    before, token = await laptop.client.sync.fetch_all("calendar")
    batch = await laptop.client.sync.push(
        "calendar", [save("e1", b"new a", first.results[0].change_tag), save("e2", b"stale b", "ff"), save("e3", b"new")],
        atomic=True,
    )
    assert [r.status for r in batch.results] == [NOT_APPLIED, CONFLICT, NOT_APPLIED]
    after, _ = await laptop.client.sync.fetch_all("calendar", token)
    assert after == []
    current = {r.record_id: r.payload for r in await phone.client.sync.get("calendar", ["e1", "e2", "e3"])}
    assert current == {"e1": b"a", "e2": b"b"}
    # Not atomic: the good ones land.
    loose = await laptop.client.sync.push(
        "calendar", [save("e1", b"new a", first.results[0].change_tag), save("e2", b"stale b", "ff"), save("e3", b"new")]
    )
    assert [r.status for r in loose.results] == [SAVED, CONFLICT, SAVED]


async def test_deletes_reach_other_devices_as_tombstones(phone, laptop) -> None:
    made = await phone.client.sync.push("contacts", [save("dave", b"x"), save("erin", b"y")])
    _, token = await laptop.client.sync.fetch_all("contacts")
    gone = await phone.client.sync.push(
        "contacts", deletes=[sync_pb2.RecordDelete(record_id="dave", change_tag=made.results[0].change_tag)]
    )
    assert gone.results[0].status == DELETED
    changes, _ = await laptop.client.sync.fetch_all("contacts", token)
    assert [(r.record_id, r.deleted, r.payload) for r in changes] == [("dave", True, b"")]
    # Deleting again is fine and changes nothing.
    again = await laptop.client.sync.push("contacts", deletes=[sync_pb2.RecordDelete(record_id="dave")])
    assert again.results[0].status == DELETED
    assert (await laptop.client.sync.fetch_all("contacts", gone.change_token))[0] == []
    zones = {z.name: z for z in await phone.client.sync.zones()}
    assert zones["contacts"].record_count == 1 and zones["contacts"].bytes == 1


async def test_paging_with_more_coming_returns_every_change_once(phone, laptop) -> None:
    for start in range(0, 1000, 400):
        await phone.client.sync.push("messages", [save(f"m{i:04}", b"hi", record_type="sms") for i in range(start, min(start + 400, 1000))])
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await laptop.client.sync.fetch("messages", token, 300)
        seen.extend(r.record_id for r in page.records)
        token = page.change_token
        pages += 1
        if not page.more_coming:
            break
    assert pages == 4 and seen == [f"m{i:04}" for i in range(1000)]


async def test_bad_input_is_refused_naming_the_field(phone, sync) -> None:
    s = phone.client.sync
    limit = sync.app.settings.max_payload_bytes
    await expect_error(s.push("bad zone!", [save("a", b"")]), grpc.StatusCode.INVALID_ARGUMENT, field="zone")
    await expect_error(s.push("z", [save("a", b"x" * (limit + 1))]), grpc.StatusCode.INVALID_ARGUMENT, field="saves[0].payload")
    await expect_error(s.push("z", [save(f"r{i}", b"") for i in range(401)]), grpc.StatusCode.INVALID_ARGUMENT, field="saves")
    await expect_error(s.push("z", [save("", b"")]), grpc.StatusCode.INVALID_ARGUMENT, field="saves[0].record_id")
    await expect_error(s.push("z", [save("a", b"", record_type="")]), grpc.StatusCode.INVALID_ARGUMENT, field="saves[0].record_type")
    await expect_error(s.push("z", [save("a", b""), save("a", b"")]), grpc.StatusCode.INVALID_ARGUMENT, field="saves[1].record_id")
    await expect_error(s.push("z", [save("a", b"", "not-a-tag")]), grpc.StatusCode.INVALID_ARGUMENT, field="saves[0].change_tag")
    await expect_error(s.push("z"), grpc.StatusCode.INVALID_ARGUMENT, field="saves")
    await expect_error(s.fetch("z", "garbage"), grpc.StatusCode.INVALID_ARGUMENT, field="change_token")
    await expect_error(s.fetch("z", "", 1001), grpc.StatusCode.INVALID_ARGUMENT, field="limit")
    # Nothing of the refused pushes was stored.
    assert await s.zones() == []
