"""Automatic checks and the blocklist, against the session's real servers and services: stored
copies of blocklisted content blocked and queued in every account and new uploads of it
refused, the blocklist managed in bulk, a burst of share links queued as spam."""

from __future__ import annotations

import datetime as dt
import pathlib
import secrets
from typing import Any

import grpc
import sqlalchemy as sa

from cumulo.events.v1 import events_pb2
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import Member, eventually, expect_error, nats_connect, read_stream
from cumulo_moderation.adapters.tables import effects
from cumulo_platform.event_types import SUBJECT_PREFIX
from cumulo_platform.events import STREAM_NAME
from cumulo_sdk import Cumulo
from cumulo_sdk.errors import CumuloRpcError

from .helpers import me, sha256, upload

# --- fixtures and helpers -----------------------------------------------------------------------


async def blocked_for_owner(member: Member, node_id: str, dest: pathlib.Path) -> bool:
    try:
        await member.client.files.download(node_id, dest)
    except CumuloRpcError as err:
        return err.reason == "CONTENT_BLOCKED"
    return False


async def cases_of(moderator: Cumulo, **wanted: Any) -> list[pb.CaseSummary]:
    found = []
    async for case in moderator.moderation.queue():
        if all(getattr(case, name) == value for name, value in wanted.items()):
            found.append(case)
    return found


async def consumer_idle(nats_url: str, durable: str) -> bool:
    connection = await nats_connect(nats_url)
    try:
        info = await connection.jetstream().consumer_info(STREAM_NAME, durable)
    finally:
        await connection.close()
    return info.num_pending == 0 and info.num_ack_pending == 0


# --- 1. the blocklist ----------------------------------------------------------------------------


async def link_opens(anonymous: Cumulo, token: str) -> str:
    """"" when the share link opens, else the reason it is refused for."""
    try:
        await anonymous.files.open_link(token)
    except CumuloRpcError as err:
        return err.reason
    return ""


async def test_a_blocklist_entry_blocks_stored_copies_in_every_account_queues_each_and_refuses_new_ones(
    moderator, owner, member, reporter, anonymous, moderation, tmp_path
):
    content = secrets.token_bytes(40_000)
    digest = sha256(content)
    owners_copy = await upload(owner.client, tmp_path / "owner", "holiday.bin", content)
    link = await owner.client.files.share(owners_copy.node_id)
    members_copy = await upload(member.client, tmp_path / "member", "copy.bin", content)
    added, listed = await moderator.moderation.block_hashes([digest.upper()], "known abuse material (hash list 2024-11)")
    assert (added, listed) == (1, 0)
    (entry,) = [e async for e in moderator.moderation.blocklist() if e.sha256 == digest]  # stored lower-case
    assert entry.reason == "known abuse material (hash list 2024-11)" and entry.added_by == me(moderator)

    # Blob has the entry by the time the call returns: every stored copy is blocked, its share
    # links disconnected, and the bytes are refused to anyone who uploads them.
    for holder, node in ((owner, owners_copy), (member, members_copy)):
        assert await blocked_for_owner(holder, node.node_id, tmp_path / "back.bin")
    assert await link_opens(anonymous, link.token) == "LINK_TAKEN_DOWN"
    await expect_error(upload(reporter.client, tmp_path / "reporter", "mine.bin", content), grpc.StatusCode.PERMISSION_DENIED, "CONTENT_BLOCKED")
    (reached,) = [e for e in await moderator.moderation.audit(limit=200) if e.action == "effect.block_content" and e.target == f"sha256:{digest}"]
    assert reached.actor == me(moderator) and reached.reason.endswith("(2 stored files)")

    # Each copy is queued for review, its owner told why.
    found = {}
    for holder, node in ((owner, owners_copy), (member, members_copy)):
        (case,) = await eventually(
            lambda n=node: cases_of(moderator, kind=pb.CASE_KIND_BLOCKLIST_MATCH, node_id=n.node_id), what="the copy's blocklist case"
        )
        assert case.account_id == holder.account_id and case.sha256 == digest
        assert case.category == pb.CATEGORY_ILLEGAL and case.state == pb.CASE_STATE_OPEN
        trail = await moderator.moderation.audit(case_id=case.case_id)
        assert {(e.actor, e.action) for e in trail} >= {("system:blocklist", "case.opened"), ("system:blocklist", "content.blocked")}
        assert case.case_id in [c.case_id for c in await holder.client.complaints.my_cases()]
        found[holder.account_id] = case
    # The member's other file is untouched.
    await member.client.files.download(member.file_id, tmp_path / "photo.jpg")
    assert (tmp_path / "photo.jpg").read_bytes() == member.content

    await moderator.moderation.unblock_hash(digest.upper(), "hash list entry withdrawn by its source")
    assert digest not in [e.sha256 async for e in moderator.moderation.blocklist()]
    removal = [e for e in await moderator.moderation.audit(limit=200) if e.action == "blocklist.removed" and e.target == f"sha256:{digest}"]
    assert len(removal) == 1
    assert removal[0].actor == me(moderator) and removal[0].reason == "hash list entry withdrawn by its source"
    additions = [e for e in await moderator.moderation.audit(limit=1000) if e.action == "blocklist.added" and e.target == f"sha256:{digest}"]
    assert len(additions) == 1  # the removal appended; it did not erase the addition
    await expect_error(
        moderator.moderation.unblock_hash(digest, "again"), grpc.StatusCode.NOT_FOUND, "NOT_LISTED"
    )
    # Off the list, the bytes may be uploaded again; each stored copy stays blocked until its
    # case is decided, and a dismissal lets it go, its share link with it.
    assert (await upload(reporter.client, tmp_path / "reporter", "mine.bin", content)).blocked is False
    assert await blocked_for_owner(owner, owners_copy.node_id, tmp_path / "back.bin")
    await moderator.moderation.decide(found[owner.account_id].case_id, "dismiss", "the source withdrew the entry")
    await owner.client.files.download(owners_copy.node_id, tmp_path / "again.bin")
    assert (tmp_path / "again.bin").read_bytes() == content
    assert await link_opens(anonymous, link.token) == ""
    assert await blocked_for_owner(member, members_copy.node_id, tmp_path / "back.bin")


async def test_bulk_blocklist_counts_what_was_already_listed_and_the_listing_pages(moderator):
    digests = sorted(sha256(secrets.token_bytes(16)) for _ in range(300))
    early = digests[::7]
    assert await moderator.moderation.block_hashes(early, "first batch") == (len(early), 0)
    # All of them again, some in upper case: only the new ones are added.
    mixed = [d.upper() if i % 3 == 0 else d for i, d in enumerate(digests)]
    response = await moderator.call(moderator.moderation.stub.AddToBlocklist, pb.AddToBlocklistRequest(sha256=mixed, reason="full list"))
    assert (response.added, response.already_listed) == (len(digests) - len(early), len(early))

    pages: list[list[str]] = []
    token = ""
    while True:
        page = await moderator.call(moderator.moderation.stub.ListBlocklist, pb.ListBlocklistRequest(page_size=37, page_token=token))
        pages.append([e.sha256 for e in page.entries])
        token = page.next_page_token
        if not token:
            break
    listed = [d for page in pages for d in page]
    assert all(len(page) <= 37 for page in pages) and len(pages) >= len(digests) // 37
    assert listed == sorted(set(listed))  # in order, nothing twice across pages
    assert set(digests) <= set(listed)
    await expect_error(
        moderator.call(moderator.moderation.stub.ListBlocklist, pb.ListBlocklistRequest(page_token="not-a-token")),
        grpc.StatusCode.INVALID_ARGUMENT, field="page_token",
    )
    await expect_error(
        moderator.call(moderator.moderation.stub.AddToBlocklist, pb.AddToBlocklistRequest(sha256=["abc"], reason="bad")),
        grpc.StatusCode.INVALID_ARGUMENT, field="sha256[0]",
    )
    too_many = [sha256(i.to_bytes(4, "big")) for i in range(10_001)]
    await expect_error(
        moderator.call(moderator.moderation.stub.AddToBlocklist, pb.AddToBlocklistRequest(sha256=too_many, reason="too many")),
        grpc.StatusCode.INVALID_ARGUMENT, field="sha256",
    )


async def test_the_documented_maximum_of_ten_thousand_digests_in_one_call(moderator):
    digests = [sha256(secrets.token_bytes(16)) for _ in range(10_000)]
    response = await moderator.call(
        moderator.moderation.stub.AddToBlocklist, pb.AddToBlocklistRequest(sha256=digests, reason="a full hash list"), timeout=110
    )
    assert (response.added, response.already_listed) == (10_000, 0)


# --- 2. link bursts ---------------------------------------------------------------------------


async def test_a_burst_of_share_links_opens_one_spam_case(moderator, member, moderation, blob, infra):
    burst = moderation.app.settings.link_burst
    window = moderation.app.settings.link_burst_window
    moved_moderation, moved_blob = dt.timedelta(0), dt.timedelta(0)
    # Moderation counts in fixed windows: start the burst at the beginning of one, so that no
    # window boundary falls inside it. Blob allows so many links a minute: its clock moves on.
    now = moderation.clock.now().timestamp()
    moved_moderation = dt.timedelta(seconds=window.total_seconds() - now % window.total_seconds() + 1)
    moderation.clock.offset += moved_moderation
    created: list[str] = []
    try:
        async def make_links(count: int) -> None:
            nonlocal moved_blob
            while len(created) < count:
                try:
                    created.append((await member.client.files.share(member.file_id)).link_id)
                except CumuloRpcError as err:
                    assert err.reason == "LINK_RATE_LIMITED", err
                    blob.clock.offset += dt.timedelta(seconds=61)
                    moved_blob += dt.timedelta(seconds=61)

        await make_links(burst)
        # Blob announced every one of them.
        announced = await read_stream(
            infra.nats.url, SUBJECT_PREFIX + ">",
            lambda e: e.account_id == member.account_id and e.payload.Is(events_pb2.ShareLinkCreated.DESCRIPTOR),
            at_least=burst,
        )
        assert len(announced) >= burst
        (case,) = await eventually(
            lambda: cases_of(moderator, kind=pb.CASE_KIND_LINK_BURST, account_id=member.account_id), timeout=20,
            what="a link-burst case for the account",
        )
        assert case.category == pb.CATEGORY_SPAM and case.target_kind == pb.TARGET_KIND_ACCOUNT
        await make_links(burst + 5)
        await eventually(lambda: consumer_idle(infra.nats.url, "moderation-links"), what="moderation to take in every link event")
        again = await cases_of(moderator, kind=pb.CASE_KIND_LINK_BURST, account_id=member.account_id)
        assert [c.case_id for c in again] == [case.case_id]
        trail = await moderator.moderation.audit(case_id=case.case_id)
        assert [(e.actor, e.action) for e in trail] == [("system:link-burst", "case.opened")]
    finally:
        moderation.clock.offset -= moved_moderation
        blob.clock.offset -= moved_blob


async def test_an_entry_blob_was_not_told_of_reaches_it_once_it_answers(moderator, member, moderation, blob_away, tmp_path):
    content = secrets.token_bytes(20_000)
    digest = sha256(content)
    node = await upload(member.client, tmp_path / "up", "late.bin", content)

    async def pending() -> list[Any]:
        async with moderation.app.db.read() as conn:
            query = sa.select(effects).where(effects.c.digests.any(digest))
            return list((await conn.execute(query)).all())

    with blob_away:
        assert await moderator.moderation.block_hashes([digest], "known abuse material (late)") == (1, 0)
        (effect,) = await pending()
        assert (effect.action, effect.account_id, effect.digests) == ("block_content", None, [digest])
        # Taking it off now would cross the addition on its way: refused until blob has it.
        await expect_error(moderator.moderation.unblock_hash(digest, "listed by mistake"), grpc.StatusCode.UNAVAILABLE, "EFFECT_PENDING")
        await member.client.files.download(node.node_id, tmp_path / "still.bin")  # blob has not been told
    try:
        await eventually(
            lambda: blocked_for_owner(member, node.node_id, tmp_path / "back.bin"), timeout=60, what="the entry to reach blob"
        )
        await eventually(
            lambda: cases_of(moderator, kind=pb.CASE_KIND_BLOCKLIST_MATCH, node_id=node.node_id), timeout=30, what="the copy's case"
        )

        async def done() -> bool:
            return await pending() == []

        await eventually(done, what="the effect to be finished")
    finally:
        await moderator.moderation.unblock_hash(digest, "test over")
