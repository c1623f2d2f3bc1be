"""Deleted means deleted: after an account is purged by the real saga, a scan of every table of
every service and every object of every bucket finds nothing personal of it: not its e-mail
address, phone number or birth date, not the unkeyed SHA-256 of a login (brute-forceable for
phone numbers), not its file's content or fingerprint, not its sync record, its device's name or
its positions. What remains is what a tombstone needs (its id, status, when) and the audit
trail. Also:
- a live user's share *to* the deleted account forgets it (id and address);
- a notice still waiting (an SMS being retried) is cancelled and scrubbed, not sent afterwards;
- a moderation case about it that was still open is closed on the record;
- a failed login for a login nobody has is counted under a keyed hash, never in clear."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import uuid
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from aiobotocore.session import get_session
from google.protobuf import timestamp_pb2

from cumulo.auth.v1 import auth_pb2
from cumulo.locator.v1 import locator_pb2
from cumulo.sync.v1 import sync_pb2
from cumulo_devstack.testing import PASSWORD, eventually, expect_error, unique_phone
from cumulo_lifecycle.adapters.tables import accounts as lifecycle_accounts
from cumulo_lifecycle.adapters.tables import notices
from cumulo_moderation.adapters.tables import cases
from cumulo_moderation.preservation import CLOSED_BY_PURGE, PURGE_ACTOR
from cumulo_sdk import Cumulo
from cumulo_sdk.devices import DeviceAgent


async def tables_of(service: Any) -> list[str]:
    db = service.app.db
    async with db.read() as conn:
        rows = await conn.execute(
            sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s AND table_type = 'BASE TABLE'"),
            {"s": db.schema},
        )
        return [f"{db.schema}.{name}" for name in rows.scalars()]


async def found_in_tables(services: dict[str, Any], needles: dict[str, str]) -> dict[str, list[str]]:
    """For each needle that some row holds: the tables whose rows hold it (each row as JSON:
    bytea shows as its hex)."""
    found: dict[str, list[str]] = {}
    for service in services.values():
        for table in await tables_of(service):
            async with service.app.db.read() as conn:
                for what, needle in needles.items():
                    hit = (
                        await conn.execute(
                            sa.text(f"SELECT EXISTS (SELECT 1 FROM {table} AS t WHERE position(:n in lower(row_to_json(t)::text)) > 0)"),
                            {"n": needle.lower()},
                        )
                    ).scalar_one()
                    if hit:
                        found.setdefault(what, []).append(table)
    return found


async def found_in_buckets(infra: Any, account_id: str, content: bytes) -> list[str]:
    """Objects, in every bucket, whose key names the account or whose bytes are its file's."""
    hits: list[str] = []
    session = get_session()
    async with session.create_client(
        "s3", endpoint_url=infra.s3.endpoint, aws_access_key_id=infra.s3.access_key, aws_secret_access_key=infra.s3.secret_key,
        region_name="us-east-1",
    ) as s3:
        for bucket in (await s3.list_buckets())["Buckets"]:
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket["Name"]):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if account_id in key:
                        hits.append(f"{bucket['Name']}/{key}")
                    elif item["Size"] == len(content):
                        body = await (await s3.get_object(Bucket=bucket["Name"], Key=key))["Body"].read()
                        if body == content:
                            hits.append(f"{bucket['Name']}/{key} (the file's bytes)")
    return hits


@pytest.fixture
def services(auth, blob, sync, locator, moderation, lifecycle) -> dict[str, Any]:
    return {"auth": auth, "blob": blob, "sync": sync, "locator": locator, "moderation": moderation, "lifecycle": lifecycle}


async def test_a_purged_account_leaves_nothing_personal_in_any_table_or_bucket(
    people, gateway, infra, services, lifecycle, moderation, mail, tmp_path
):
    marker = uuid.uuid4().hex
    born = dt.date(1940 + random.randrange(30), random.randrange(1, 13), random.randrange(1, 29))
    doomed = await people.new("doomed's phone", birth_date=born)
    friend = await people.new("friend")
    phone = unique_phone()
    await doomed.client.call(
        doomed.client.auth.UpdateContacts, auth_pb2.UpdateContactsRequest(phone=phone, update_mask=["phone"])
    )
    account = doomed.account_id

    # Content of every kind: a file (then reported), a sync record, a device with positions.
    content = os.urandom(4096) + marker.encode()
    (tmp_path / f"{marker}.bin").write_bytes(content)
    node = await doomed.client.files.upload(tmp_path / f"{marker}.bin")
    fingerprint = hashlib.sha256(content).hexdigest()
    await doomed.client.sync.push("notes", [sync_pb2.RecordSave(record_id="n1", record_type="note", payload=f'{{"text": "{marker}"}}'.encode())])
    agent = DeviceAgent(doomed.client)
    await agent.register("doomed-phone", name=f"phone {marker}")
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC))
    await agent.report("doomed-phone", [locator_pb2.Location(latitude=12.3456789, longitude=98.7654321, accuracy=5, measured_at=stamp,
                                                              source=locator_pb2.LOCATION_SOURCE_GPS)])
    await doomed.client.files.share(node.node_id)
    # Someone complains about the file: a case about the account opens (with the file's fingerprint).
    await friend.client.complaints.report("file", node.node_id, category="harmful", description="harmful: reported in a test")

    # A live user shares with the doomed account, and the doomed account with the live user
    # (whose notice names the doomed sharer's address until it is sent).
    shared_folder = await friend.client.files.mkdir("", f"for-doomed-{marker[:6]}")
    await friend.client.files.share_with(shared_folder.node_id, doomed.email)
    given = await doomed.client.files.mkdir("", f"from-doomed-{marker[:6]}")
    await doomed.client.files.share_with(given.node_id, friend.email)

    async def friend_told() -> bool:
        return any(m["To"] == friend.email and doomed.email in m["Subject"] for m in mail.messages())

    await eventually(friend_told, timeout=30, what="the friend's share notice")

    # An SMS to the doomed account being retried when the deletion comes.
    sms_id = uuid.uuid4().hex
    async with lifecycle.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(notices).values(
                notice_id=uuid.uuid4(), account_id=uuid.UUID(account), kind="frozen", cycle=f"test-{sms_id}", channel="sms",
                destination=phone, locale="en", subject="frozen", body=f"your account is frozen {marker}", status="pending",
                attempts=3, next_attempt_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), created_at=dt.datetime.now(dt.UTC),
            )
        )
        await uow.commit()

    # A failed login for a phone number nobody has.
    stranger_phone = unique_phone()
    async with Cumulo(gateway) as anonymous:
        await expect_error(anonymous.login(stranger_phone, "wrong password 123"), grpc.StatusCode.UNAUTHENTICATED)

    # The scan sees what is there: before the purge it finds each kind of the account's data.
    present = {"e-mail": doomed.email, "phone": phone, "birth date": born.isoformat(), "file fingerprint": fingerprint,
               "marker": marker, "latitude": "12.3456789"}
    before = await found_in_tables(services, present)
    assert all(before.values()), before
    assert await found_in_buckets(infra, account, content) != []

    # The owner cancels; the real saga purges every service.
    await doomed.client.call(doomed.client.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=PASSWORD))

    async def deleted() -> bool:
        async with lifecycle.app.db.read() as conn:
            state = (await conn.execute(sa.select(lifecycle_accounts.c.state).where(lifecycle_accounts.c.account_id == uuid.UUID(account)))).scalar()
        return state == "deleted"

    await eventually(deleted, timeout=60, what="the purge of every service")

    async def last_notices_done() -> bool:  # "your account was deleted" needs the address until it goes
        async with lifecycle.app.db.read() as conn:
            pending = sa.select(sa.func.count()).where(notices.c.account_id == uuid.UUID(account), notices.c.status == "pending")
            return (await conn.execute(pending)).scalar_one() == 0

    await eventually(last_notices_done, timeout=60, what="the deletion notices to be sent")

    def sha_hex(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    needles = {
        "e-mail": doomed.email,
        "phone": phone,
        "phone digits": phone.lstrip("+"),
        "birth date": born.isoformat(),
        "SHA-256 of the e-mail": sha_hex(doomed.email),
        "SHA-256 of the phone": sha_hex(phone),
        "file fingerprint": fingerprint,
        "marker (file name, record, device name, notice)": marker,
        "marker as bytes": marker.encode().hex(),
        "latitude": "12.3456789",
        "a stranger's login": stranger_phone,
        "SHA-256 of a stranger's login": sha_hex(stranger_phone),
    }
    found = await found_in_tables(services, needles)
    assert {what: tables for what, tables in found.items() if tables} == {}
    assert await found_in_buckets(infra, account, content) == []

    # The waiting SMS was cancelled, not sent; open cases about the account are closed.
    async with lifecycle.app.db.read() as conn:
        (sms,) = (await conn.execute(sa.select(notices).where(notices.c.cycle == f"test-{sms_id}"))).all()
    assert (sms.status, sms.body, sms.next_attempt_at) == ("cancelled", "", None)
    async with moderation.app.db.read() as conn:
        closed = (await conn.execute(sa.select(cases).where(cases.c.account_id == uuid.UUID(account)))).all()
    assert [(c.state, c.decided_by, c.reason, c.sha256) for c in closed] == [("decided", PURGE_ACTOR, CLOSED_BY_PURGE, "")]
