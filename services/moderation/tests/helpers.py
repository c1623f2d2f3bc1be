"""What the moderation tests share besides fixtures (the conftest's fixtures use it too):
copyright notices, uploads, complaints, restores and the queue; moderators; and the world the security
tests (test_security*.py) aim their calls at (the conftest's `world` and `fresh_world`)."""

from __future__ import annotations

import dataclasses
import hashlib
import pathlib
import secrets
import uuid
from typing import Any

import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2
from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import PASSWORD, Member, People, Person, new_member, unique_email, with_client_id
from cumulo_devstack.testing.accounts import new_moderator
from cumulo_moderation.adapters.tables import cases
from cumulo_sdk import Cumulo


def copyright_claim(**changes: Any) -> pb.CopyrightClaim:
    fields: dict[str, Any] = dict(
        rights_holder="Lumen Pictures Ltd", rights_holder_contact="legal@lumen.example, +44 20 7946 0000",
        work="the photograph 'Harbour at Dawn' (2024)", location="the share link given as the target",
        good_faith_statement=True, accuracy_statement=True, signature="Jane Roe",
    )
    fields.update(changes)
    return pb.CopyrightClaim(**fields)


def me(client: Cumulo) -> str:
    assert client.store.tokens is not None
    return client.store.tokens.account_id


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def upload(client: Cumulo, folder: pathlib.Path, name: str, content: bytes | None = None) -> blob_pb2.Node:
    """Uploads a file of the given (or random) bytes from `folder` (made if need be)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(secrets.token_bytes(20_000) if content is None else content)
    return await client.files.upload(path)


async def complain_about_file(member, node_id: str, category: str = "harmful", claim=None) -> pb.FileComplaintResponse:
    """A signed-in member's complaint about a file (a copyright one carries `claim`)."""
    return await member.client.complaints.report(
        "file", node_id, category=category, description=f"{category}: reported in a test", copyright=claim,
    )


async def queued(moderator: Cumulo) -> list[pb.CaseSummary]:
    return [case async for case in moderator.moderation.queue()]


async def waiting_period_over(moderation, case_id: str) -> None:
    """The case's waiting period after its counter-notice ends now. No clock moves: moved, it
    would make every other test's notice drafts, leases and waiting periods look long over to
    the jobs that run meanwhile."""
    async with moderation.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.update(cases)
            .where(cases.c.case_id == uuid.UUID(case_id), cases.c.counter_state == "waiting")
            .values(restore_at=moderation.clock.now())
        )
        await uow.commit()


async def restore_now(moderation, case_id: str) -> int:
    """The case's waiting period is over, and the restore job runs (answers how many it restored)."""
    await waiting_period_over(moderation, case_id)
    return await moderation.app.cases.restore_due()


async def downloads(client: Cumulo, node_id: str, folder: pathlib.Path) -> bytes:
    target = folder / f"back-{uuid.uuid4().hex[:8]}"
    await client.files.download(node_id, target)
    return target.read_bytes()


async def make_moderator(
    gateway: str, folder: pathlib.Path, internal_auth: auth_pb2_grpc.AuthInternalServiceStub, device_name: str = "moderation desk"
) -> Member:
    member = await new_member(gateway, folder)
    await internal_auth.SetAccountRoles(
        auth_pb2.SetAccountRolesRequest(account_id=member.account_id, roles=["moderator"], reason="trust and safety team", actor="test")
    )
    await member.client.login(member.email, PASSWORD, device_name=device_name)
    return member


# --- the security tests' world --------------------------------------------------------------------


@dataclasses.dataclass
class Snapshot:
    """What the moderator and the owner see of the world."""

    cases: dict[str, pb.GetCaseResponse]
    queued: list[pb.CaseSummary]
    audit: list[pb.AuditEntry]
    blocklist: list[pb.BlocklistEntry]
    verified: tuple[bool, list[str], int]
    mine: list[pb.CaseSummary]


@dataclasses.dataclass
class World:
    """The owner (two files, both taken down on the complainant's copyright notices: A, via
    the share link of the first, counter-noticed and waiting; C, about the second, not
    disputed yet); B, an open anonymous spam complaint about the owner's account; the owner's
    account under a legal hold with an evidence export; a digest on the blocklist and one
    never to be on it. The moderator did all that; the stranger is an unrelated member."""

    owner: Person
    moderator: Person
    complainant: Person
    stranger: Person
    link_token: str
    case_a: str
    complaint_a: str
    receipt_a: str
    case_b: str
    case_c: str
    complaint_c: str
    receipt_c: str
    export_id: str
    listed: str  # on the blocklist
    unlisted: str  # never to be on it
    contact: str
    snapshot: Snapshot

    async def snapshot_now(self) -> Snapshot:
        return await snapshot_of(self.moderator, self.owner, [self.case_a, self.case_b, self.case_c], self.export_id, {self.listed, self.unlisted})


async def metadata_of(world: World, who: str) -> list[tuple[str, str]]:
    """A call's metadata as one of the world's people, or as "anonymous" (a client id alone)."""
    return with_client_id() if who == "anonymous" else await getattr(world, who).metadata()


async def snapshot_of(world_moderator: Person, owner: Person, case_ids: list[str], export_id: str, digests: set[str]) -> Snapshot:
    moderation = world_moderator.client.moderation
    verified = await moderation.verify(export_id)
    return Snapshot(
        cases={case_id: await moderation.case(case_id) for case_id in case_ids},
        queued=[c async for c in moderation.queue() if c.case_id in case_ids],
        audit=await moderation.audit(account_id=owner.account_id, limit=1000),
        blocklist=[e async for e in moderation.blocklist() if e.sha256 in digests],
        verified=(verified.intact, list(verified.problems), verified.parts_checked),
        mine=await owner.client.complaints.my_cases(),
    )


async def build_world(gateway: str, auth_target: str, people: People, folder: pathlib.Path) -> World:
    """Makes a World with accounts of `people` (who closes their clients); `folder` is the owner's."""
    member = await new_member(gateway, folder, mail=people.mail)
    people.clients.append(member.client)
    owner = Person(member.client, member.email, member.account_id)
    link = await owner.client.files.share(member.file_id)
    (folder / "second.jpg").write_bytes(secrets.token_bytes(20_000))
    node = await owner.client.files.upload(folder / "second.jpg")
    moderator = await new_moderator(people, auth_target)
    complainant, stranger = await people.new("rights holder's laptop"), await people.new("stranger")
    anonymous = Cumulo(gateway)
    people.clients.append(anonymous)

    complaints = complainant.client.complaints
    filed_a = await complaints.report(
        "link", f"https://cumulo.example/s/{link.token}", category="copyright", description="our photograph, shared without licence",
        copyright=copyright_claim(location=f"https://cumulo.example/s/{link.token}"),
    )
    filed_c = await complaints.report(
        "file", node.node_id, category="copyright", description="another of our photographs",
        copyright=copyright_claim(work="'Quay at Dusk'", location="the file named in the complaint"),
    )
    filed_b = await anonymous.complaints.report(
        "account", owner.account_id, category="spam", description="this account sends me spam links every hour",
        contact_address=unique_email(), signed_in=False,
    )
    assert len({filed_a.case_id, filed_b.case_id, filed_c.case_id}) == 3

    desk = moderator.client.moderation
    for filed in (filed_a, filed_c):
        assert (await desk.decide(filed.case_id, "block", "the complainant's photograph, unlicensed")).decision == pb.DECISION_BLOCK
    waiting = await owner.client.complaints.counter_notice(
        filed_a.case_id, statement="I took this photograph myself", name="Ann Owner", contact="ann@example.com"
    )
    assert waiting.counter_notice == pb.COUNTER_NOTICE_STATE_WAITING
    await desk.hold(owner.account_id, held=True, reason="law enforcement preservation request 2025-118")
    evidence = await desk.export(owner.account_id, "law enforcement preservation request 2025-118")
    listed, unlisted = secrets.token_hex(32), secrets.token_hex(32)
    assert await desk.block_hashes([listed], "known abuse material (hash list import)") == (1, 0)

    snapshot = await snapshot_of(
        moderator, owner, [filed_a.case_id, filed_b.case_id, filed_c.case_id], evidence.export_id, {listed, unlisted}
    )
    assert [c.case_id for c in snapshot.queued] == [filed_b.case_id]
    assert {c.case_id for c in snapshot.mine} == {filed_a.case_id, filed_c.case_id}
    assert snapshot.verified[0] and not snapshot.verified[1]
    assert [e.sha256 for e in snapshot.blocklist] == [listed]
    assert snapshot.cases[filed_b.case_id].case.state == pb.CASE_STATE_OPEN
    return World(
        owner, moderator, complainant, stranger, link.token,
        filed_a.case_id, filed_a.complaint_id, filed_a.receipt, filed_b.case_id, filed_c.case_id, filed_c.complaint_id, filed_c.receipt,
        evidence.export_id, listed, unlisted, unique_email(), snapshot,
    )


