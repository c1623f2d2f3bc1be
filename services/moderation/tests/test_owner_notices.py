"""The mails an owner gets about their content, as delivered (moderation -> lifecycle -> SMTP):
each names the file by its path as the owner sees it (the current one after a move or
rename; a fallback when the file is gone), says what the owner can do and until when, and
tells times in the platform's zone. A blob outage delays a notice or makes it go out without
the path; it never loses one."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import eventually, read_stream, unique_email
from cumulo_lifecycle.adapters.tables import accounts as lifecycle_accounts
from cumulo_moderation.adapters.tables import owner_notices
from cumulo_moderation.domain.notices import About, span
from cumulo_moderation.owner_notices import PATIENCE, OwnerNotices
from cumulo_platform.event_types import event_filter

from .helpers import complain_about_file, restore_now, upload

MAIL_WAIT = 30.0


async def lifecycle_knows(lifecycle, account_id: str) -> None:
    """The lifecycle delivers to the contacts it has on record: it must have learnt them."""

    async def known() -> bool:
        async with lifecycle.app.db.read() as conn:
            row = (await conn.execute(sa.select(lifecycle_accounts.c.email).where(lifecycle_accounts.c.account_id == uuid.UUID(account_id)))).first()
        return row is not None and bool(row.email)

    await eventually(known, timeout=MAIL_WAIT, what="the lifecycle to know the owner's e-mail address")


async def mail_about(mail, address: str, case_id: str, subject: str) -> str:
    """The body of the mail with `subject` to `address` about the case."""

    async def found() -> str | None:
        bodies = [m.get_content() for m in mail.messages() if m["To"] == address and m["Subject"] == subject]
        return next((b for b in bodies if case_id in b), None)

    return await eventually(found, timeout=MAIL_WAIT, what=f"the mail {subject!r} about case {case_id}")


async def test_a_copyright_block_names_the_path_says_how_to_counter_notice_and_the_restore_names_the_new_path(
    owner, anonymous, moderator, moderation, lifecycle, mail, claim, tmp_path
):
    await lifecycle_knows(lifecycle, owner.account_id)
    top = f"photos-{uuid.uuid4().hex[:6]}"
    year = await owner.client.files.makedirs(f"/{top}/2026")
    (tmp_path / "harbour.jpg").write_bytes(secrets.token_bytes(20_000))
    node = await owner.client.files.upload(tmp_path / "harbour.jpg", parent_id=year)
    link = await owner.client.files.share(node.node_id)
    filed = await anonymous.complaints.report(
        "link", link.token, category="copyright", description="our photograph", contact_address=unique_email(), copyright=claim(),
        signed_in=False,
    )
    await moderator.moderation.decide(filed.case_id, "block", "the complainant's photograph, unlicensed")

    body = await mail_about(mail, owner.email, filed.case_id, "A file in your cumulo account has been blocked")
    assert f"Your file /{top}/2026/harbour.jpg has been blocked after a complaint." in body
    assert node.node_id not in body  # named as the owner knows it, never by an id
    assert f"cumulo report counter-notice {filed.case_id} --statement" in body and "--name" in body and "--contact" in body
    assert "--consent" in body
    assert "There is no deadline for filing it" in body
    assert f"restored {span(moderation.app.settings.counter_notice_wait)} later" in body
    assert "cumulo report cases" in body

    await owner.client.complaints.counter_notice(filed.case_id, statement="I took it myself", name="Ann Owner", contact="ann@example.com")
    await owner.client.files.rename(year, "2026-harbour")  # moved on meanwhile: the restore names where it is now
    await restore_now(moderation, filed.case_id)
    body = await mail_about(mail, owner.email, filed.case_id, "Your file is available again")
    assert f"so your file /{top}/2026-harbour/harbour.jpg is available again (case {filed.case_id})" in body


async def test_a_delete_names_the_path_the_file_had_and_a_warning_names_the_file(
    owner, reporter, moderator, moderation, lifecycle, mail, tmp_path
):
    await lifecycle_knows(lifecycle, owner.account_id)
    doomed = await upload(owner.client, tmp_path, "leak.pdf")
    deleted = await complain_about_file(reporter, doomed.node_id, "privacy")
    await moderator.moderation.decide(deleted.case_id, "delete", "someone's medical records")
    body = await mail_about(mail, owner.email, deleted.case_id, "A file in your cumulo account has been removed")
    assert "Your file /leak.pdf has been deleted after a complaint" in body
    assert "reply to this message quoting case" in body and "There is no deadline" in body and "cumulo report cases" in body

    warned = await complain_about_file(reporter, owner.file_id, "spam")
    await moderator.moderation.decide(warned.case_id, "warn", "advertising in a shared photo")
    assert await drafts(moderation, f"case:{warned.case_id}:decided") == []  # sent as the decision was, path looked up
    body = await mail_about(mail, owner.email, warned.case_id, "A warning about your cumulo account")
    assert "A complaint about your file /photo.jpg was upheld." in body
    assert f"reply to this message quoting case {warned.case_id}" in body


async def test_a_file_in_the_trash_or_deleted_meanwhile_is_still_told_of(owner, anonymous, reporter, moderator, moderation, lifecycle, mail, tmp_path):
    await lifecycle_knows(lifecycle, owner.account_id)
    trashed = await upload(owner.client, tmp_path, "old.jpg")
    first = await complain_about_file(reporter, trashed.node_id, "harmful")
    await owner.client.files.delete(trashed.node_id)
    await moderator.moderation.decide(first.case_id, "warn", "harmful material")
    body = await mail_about(mail, owner.email, first.case_id, "A warning about your cumulo account")
    assert "A complaint about your file /old.jpg (now in your trash) was upheld." in body

    # Reported by its link, then deleted for good before the decision: named by what is left.
    filed = await anonymous.complaints.report(
        "link", owner.link_token, category="spam", description="spam", contact_address=unique_email(), signed_in=False
    )
    await owner.client.files.delete(owner.file_id)
    await owner.client.files.empty_trash()
    await moderator.moderation.decide(filed.case_id, "warn", "spam links")
    body = await mail_about(mail, owner.email, filed.case_id, "A warning about your cumulo account")
    zone = moderation.app.settings.time_zone.key
    assert "A complaint about a file you shared by link (reported on 20" in body and f"{zone}" in body
    assert owner.file_id not in body


async def test_a_blocklist_match_names_the_uploaded_file(member, moderator, lifecycle, mail, blocklisted, tmp_path):
    await lifecycle_knows(lifecycle, member.account_id)
    folder = await member.client.files.makedirs("/inbox")
    (tmp_path / "scan.bin").write_bytes(blocklisted.content)
    node = await member.client.files.upload(tmp_path / "scan.bin", parent_id=folder)
    await blocklisted.list()  # the stored copy is blocked, and queued

    async def case_id() -> str | None:
        mine = [c for c in await member.client.complaints.my_cases() if c.node_id == node.node_id]
        return mine[0].case_id if mine else None

    case = await eventually(case_id, timeout=MAIL_WAIT, what="the blocklist match's case")
    body = await mail_about(mail, member.email, case, "A file in your cumulo account is blocked pending review")
    assert "Your file /inbox/scan.bin matches content that is known to be unlawful" in body
    assert "a moderator reviews the case, and you will hear the decision" in body


# --- blob does not answer ---------------------------------------------------------------------------


async def drafts(moderation, reference: str) -> list[Any]:
    async with moderation.app.db.read() as conn:
        return list((await conn.execute(sa.select(owner_notices).where(owner_notices.c.reference == reference))).all())


async def test_while_blob_does_not_answer_a_notice_waits_for_the_path_then_goes_out_without_it(
    owner, reporter, moderator, moderation, lifecycle, mail, blob_away, tmp_path
):
    await lifecycle_knows(lifecycle, owner.account_id)
    later = await complain_about_file(reporter, owner.file_id, "spam")
    other = await upload(owner.client, tmp_path, "second.jpg")
    fallback = await complain_about_file(reporter, other.node_id, "harmful")

    with blob_away:
        await moderator.moderation.decide(later.case_id, "warn", "advertising in a shared photo")
        [draft] = await drafts(moderation, f"case:{later.case_id}:decided")  # waiting for the path
    await moderation.app.owners.send(draft.reference)  # blob is back (or the job got there first)
    body = await mail_about(mail, owner.email, later.case_id, "A warning about your cumulo account")
    assert "A complaint about your file /photo.jpg was upheld." in body

    with blob_away:
        await moderator.moderation.decide(fallback.case_id, "warn", "harmful material")
        reference = f"case:{fallback.case_id}:decided"
        async with moderation.app.db.unit_of_work() as uow:  # it has waited long enough
            await uow.execute(
                sa.update(owner_notices).where(owner_notices.c.reference == reference)
                .values(created_at=owner_notices.c.created_at - PATIENCE, due_at=moderation.clock.now())
            )
            await uow.commit()
        await moderation.app.owners.send(reference)
        body = await mail_about(mail, owner.email, fallback.case_id, "A warning about your cumulo account")
    assert "A complaint about a file in your account (reported on 20" in body
    assert "/second.jpg" not in body and other.node_id not in body
    assert await drafts(moderation, reference) == []


async def test_content_blob_says_is_gone_is_named_without_its_path_at_once(
    owner, reporter, moderator, moderation, lifecycle, mail, blob_away, tmp_path
):
    await lifecycle_knows(lifecycle, owner.account_id)
    doomed = await upload(owner.client, tmp_path, "gone-meanwhile.jpg")
    filed = await complain_about_file(reporter, doomed.node_id, "harmful")
    reference = f"case:{filed.case_id}:decided"
    with blob_away:
        await moderator.moderation.decide(filed.case_id, "warn", "harmful material")
        assert await drafts(moderation, reference)  # waiting for the path
        await owner.client.files.delete(doomed.node_id)  # the owner's calls reach blob
        await owner.client.files.empty_trash()
    # Blob answers, without the file: nothing to wait for (were it not known, the draft would
    # wait PATIENCE, far longer than MAIL_WAIT).
    await moderation.app.owners.send(reference)  # (or the job got there first)
    body = await mail_about(mail, owner.email, filed.case_id, "A warning about your cumulo account")
    assert "A complaint about a file in your account (reported on 20" in body
    assert "gone-meanwhile" not in body and doomed.node_id not in body
    assert await drafts(moderation, reference) == []


# --- drafts: asked about together, sent once, purged with the account --------------------------


class CountedBlob:
    """Moderation's calls for paths, made for real and written down."""

    def __init__(self, services: Any) -> None:
        self.services = services
        self.asked: list[tuple[str, list[str]]] = []

    async def places(self, account_id: str, node_ids: list[str]) -> dict[str, Any]:
        self.asked.append((account_id, sorted(node_ids)))
        return await self.services.places(account_id, node_ids)


async def test_drafts_sent_together_ask_blob_once_per_account(owner, moderation, lifecycle, mail, tmp_path):
    await lifecycle_knows(lifecycle, owner.account_id)
    app = moderation.app
    nodes = [await upload(owner.client, tmp_path, name) for name in ("first.jpg", "second.jpg")]
    case_ids = {node.name: str(uuid.uuid4()) for node in nodes}
    references = [f"test:{case_ids[node.name]}:auto-blocked" for node in nodes]
    since = app.owners.local(moderation.clock.now())
    async with app.db.unit_of_work() as uow:
        for node, reference in zip(nodes, references, strict=True):
            await app.owners.tell(
                uow, account_id=owner.account_id, reference=reference, kind="auto_blocked", args={"case_id": case_ids[node.name]},
                about=About(node_kind="file", via="upload", since=since), node_id=node.node_id,
            )
        # Out of the job's reach: only this test's own instance sends them.
        await uow.execute(
            sa.update(owner_notices).where(owner_notices.c.reference.in_(references))
            .values(due_at=moderation.clock.now() + dt.timedelta(days=1))
        )
        await uow.commit()
    counted = CountedBlob(app.owners.services)
    own = OwnerNotices(app.db, app.settings, moderation.clock, counted)

    assert await own.send(*references) == 2
    assert counted.asked == [(owner.account_id, sorted(node.node_id for node in nodes))]
    for node in nodes:
        body = await mail_about(mail, owner.email, case_ids[node.name], "A file in your cumulo account is blocked pending review")
        assert f"Your file /{node.name} matches content" in body
    for reference in references:
        assert await drafts(moderation, reference) == []


def told_of(reference: str) -> Any:
    """Whether an event envelope is a notice with this reference."""

    def told(envelope: events_pb2.Envelope) -> bool:
        notice = events_pb2.NoticeRequested()
        return envelope.payload.Unpack(notice) and notice.reference == reference

    return told


class Meeting:
    """Blob's answer about one node held back until two callers have asked for it: two
    finishers of one draft, both past taking it up, then go on together."""

    def __init__(self, services: Any, node_id: str) -> None:
        self.services = services
        self.node_id = node_id
        self.first = asyncio.Event()
        self.met = asyncio.Barrier(2)

    async def places(self, account_id: str, node_ids: list[str]) -> dict[str, Any]:
        if self.node_id in node_ids:
            self.first.set()
            async with asyncio.timeout(MAIL_WAIT):
                await self.met.wait()
        return await self.services.places(account_id, node_ids)


async def test_send_racing_the_job_for_a_draft_queues_one_notice(
    owner, reporter, moderator, moderation, lifecycle, mail, infra, blob_away
):
    await lifecycle_knows(lifecycle, owner.account_id)
    filed = await complain_about_file(reporter, owner.file_id, "spam")
    reference = f"case:{filed.case_id}:decided"
    owners = moderation.app.owners
    real = owners.services
    with blob_away:
        await moderator.moderation.decide(filed.case_id, "warn", "advertising in a shared photo")
        meeting = Meeting(real, owner.file_id)
        owners.services = meeting
        async with moderation.app.db.unit_of_work() as uow:  # due now: the job takes it up (its periodic run, or this one)
            await uow.execute(sa.update(owner_notices).where(owner_notices.c.reference == reference).values(due_at=moderation.clock.now()))
            await uow.commit()
    try:

        async def send_meanwhile() -> int:
            await meeting.first.wait()  # the job holds the draft, looking its path up
            return await owners.send(reference)

        await asyncio.gather(owners.send_due(), send_meanwhile())
    finally:
        owners.services = real
    body = await mail_about(mail, owner.email, filed.case_id, "A warning about your cumulo account")
    assert "A complaint about your file /photo.jpg was upheld." in body
    assert await drafts(moderation, reference) == []

    async def published() -> bool:  # every finisher's notice, had both queued it
        async with moderation.app.db.read() as conn:
            waiting = (await conn.execute(sa.select(moderation.app.db.outbox.c.envelope))).scalars().all()
        return not any(told_of(reference)(events_pb2.Envelope.FromString(e)) for e in waiting)

    await eventually(published, timeout=MAIL_WAIT, what="moderation's outbox to have published the notice")
    queued = await read_stream(infra.nats.url, event_filter("notice.requested"), told_of(reference), what=f"the notice {reference}")
    assert len(queued) == 1


async def test_a_purge_deletes_the_notices_still_waiting_for_a_path(owner, reporter, moderator, moderation, blob_away):
    filed = await complain_about_file(reporter, owner.file_id, "spam")
    reference = f"case:{filed.case_id}:decided"
    with blob_away:
        await moderator.moderation.decide(filed.case_id, "warn", "advertising in a shared photo")
        assert await drafts(moderation, reference)  # waiting for the path
        assert await moderation.app.preservation.purge(uuid.UUID(owner.account_id)) >= 1
    assert await drafts(moderation, reference) == []
    assert await moderation.app.owners.send(reference) == 0  # nothing left to send
