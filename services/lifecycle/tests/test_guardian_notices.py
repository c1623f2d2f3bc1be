"""A minor's lifecycle notices reach their guardian too (§6), by the guardian's verified
contacts and saying they come as the guardian; a minor whose own address is not verified is
still warned through the guardian. Once the guardian's access has ended, they hear no more."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from cumulo_devstack.testing import eventually, lifecycle_has_contact, unique_email
from cumulo_lifecycle.adapters.tables import accounts

from .conftest import notices_of, row_of

NOTE = "You receive this as the guardian of a minor's cumulo account"


async def test_a_minors_freeze_notice_reaches_the_guardian(people, lifecycle, ages, mailbox) -> None:
    guardian = await people.new()
    await lifecycle_has_contact(lifecycle, guardian.email)
    child_email = unique_email()  # never verified: the child's own address gets nothing
    minor = await guardian.client.create_minor(
        email=child_email, password="a child's long passphrase", birth_date=dt.date.today() - dt.timedelta(days=365 * 10)
    )
    row = await eventually(
        lambda: row_of(lifecycle, minor.account_id, lambda r: r.guardian_email == guardian.email), what="the guardian's contacts"
    )
    assert row.email is None and row.guardian_until > dt.datetime.now(dt.UTC)

    await ages.freeze(minor.account_id)
    (told,) = await mailbox.wait_for(guardian.email, "frozen")
    assert told.get_content().startswith(NOTE)
    assert mailbox.to(child_email) == []
    sent = await notices_of(lifecycle, minor.account_id)
    assert set(sent) == {"guardian_email"}


async def test_once_the_guardians_access_has_ended_they_hear_no_more(people, lifecycle, ages) -> None:
    guardian = await people.new()
    await lifecycle_has_contact(lifecycle, guardian.email)
    minor = await guardian.client.create_minor(
        email=unique_email(), password="a child's long passphrase", birth_date=dt.date.today() - dt.timedelta(days=365 * 10)
    )
    await eventually(lambda: row_of(lifecycle, minor.account_id, lambda r: r.guardian_email == guardian.email), what="the guardian's contacts")
    # As if the minor had come of age since the copy was made.
    async with lifecycle.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.update(accounts).where(accounts.c.account_id == uuid.UUID(minor.account_id))
            .values(guardian_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await uow.commit()
    await ages.freeze(minor.account_id)
    sent = await notices_of(lifecycle, minor.account_id)
    assert "guardian_email" not in sent and set(sent) == {"none"}
