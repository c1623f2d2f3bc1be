"""Where an effect's content is, for the owner's notice: asked of blob once per effect (before
a delete, and kept for its retry; after any other effect), and not at all when the owner is
not told (a dismissal)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import eventually, expect_error
from cumulo_moderation.adapters.tables import effects
from cumulo_moderation.domain.notices import Place

from .helpers import complain_about_file
from .test_owner_notices import MAIL_WAIT, lifecycle_knows, mail_about


class PathsAsked:
    """What moderation's notices ask blob about paths, answered by blob over a channel of its
    own (so that `blob_away` stops the effects, not these answers) and written down."""

    def __init__(self, blob: blob_pb2_grpc.BlobInternalServiceStub) -> None:
        self.blob = blob
        self.asked: list[str] = []

    async def places(self, account_id: str, node_ids: list[str]) -> dict[str, Place]:
        self.asked.extend(node_ids)
        found = await self.blob.DescribePaths(blob_pb2.DescribePathsRequest(account_id=account_id, node_ids=node_ids), timeout=10)
        return {p.node_id: Place(path=p.path, in_trash=p.in_trash) for p in found.paths}


@pytest.fixture
async def paths_asked(moderation, internal_blob) -> AsyncIterator[PathsAsked]:
    owners = moderation.app.owners
    real = owners.services
    owners.services = PathsAsked(internal_blob)
    try:
        yield owners.services
    finally:
        owners.services = real


async def decided(moderator, case_id: str) -> bool:
    return (await moderator.moderation.case(case_id)).case.state == pb.CASE_STATE_DECIDED


async def test_a_delete_looks_its_path_up_once_and_its_retry_names_it_without_asking_again(
    owner, reporter, moderator, moderation, lifecycle, mail, blob_away, paths_asked
):
    await lifecycle_knows(lifecycle, owner.account_id)
    filed = await complain_about_file(reporter, owner.file_id, "privacy")
    with blob_away:  # blob does not carry the delete out; the path is known by then
        await expect_error(moderator.moderation.decide(filed.case_id, "delete", "someone's address"), grpc.StatusCode.UNAVAILABLE)
        async with moderation.app.db.read() as conn:
            pending = (await conn.execute(sa.select(effects).where(effects.c.case_id == uuid.UUID(filed.case_id)))).one()
        assert pending.place == {"path": "/photo.jpg", "in_trash": False, "gone": False}
    # Blob is back: the effects job carries the delete out, and the notice names the file as
    # it was, though blob no longer knows it.
    await eventually(lambda: decided(moderator, filed.case_id), timeout=MAIL_WAIT, what="the delete to be carried out")
    body = await mail_about(mail, owner.email, filed.case_id, "A file in your cumulo account has been removed")
    assert "Your file /photo.jpg has been deleted after a complaint" in body
    assert paths_asked.asked.count(owner.file_id) == 1


async def test_a_block_asks_once_and_a_dismissal_not_at_all(member, moderator, paths_asked, blocklisted, tmp_path):
    (tmp_path / "scan.bin").write_bytes(blocklisted.content)
    node = await member.client.files.upload(tmp_path / "scan.bin")
    await blocklisted.list()  # the stored copy is blocked, and queued

    async def case_id() -> str | None:
        mine = [c for c in await member.client.complaints.my_cases() if c.node_id == node.node_id]
        return mine[0].case_id if mine else None

    case = await eventually(case_id, timeout=MAIL_WAIT, what="the blocklist match's case")
    assert paths_asked.asked.count(node.node_id) == 1  # the block's notice names the file
    await moderator.moderation.decide(case, "dismiss", "a false match")  # nothing to tell
    assert await decided(moderator, case)
    await blocklisted.unlist("a false match")
    assert paths_asked.asked.count(node.node_id) == 1
