"""A share link's password attempt is counted before its hash is checked (parallel guesses
cannot outrun the lock-out), but only once a hashing worker is the check's: an attempt refused
because the hashing queue is full is never counted, so a busy server neither counts a right
password against its owner nor lets a flood's unchecked guesses lock a link. Against the
session's blob database, with a real `Passwords` of one worker whose hash check this test holds."""

import asyncio
import threading

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from cumulo.blob.v1 import blob_pb2
from cumulo_blob.adapters.tables import share_links
from cumulo_blob.sharing import Sharing, token_hash
from cumulo_devstack.testing import eventually
from cumulo_platform.clock import SystemClock
from cumulo_platform.errors import PermissionDenied, ResourceExhausted
from cumulo_platform.passwords import BUSY_REASON, Passwords

LINK_PASSWORD = "open sesame 42"


class HeldHasher(PasswordHasher):
    """Argon2id, whose checks wait until the test lets them go."""

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.gate.wait(60)
        return super().verify(hash, password)


def _checking(passwords: Passwords):
    async def one_running() -> bool:
        return passwords.running("verify") == 1

    return one_running


async def _not_used(recipient: str) -> str:
    raise AssertionError("no account is looked up here")


async def _failures(blob, token: str) -> int:
    async with blob.app.db.read() as conn:
        return (
            await conn.execute(sa.select(share_links.c.failed_passwords).where(share_links.c.token_hash == token_hash(token)))
        ).scalar_one()


@pytest.fixture
async def held(blob):
    gate = threading.Event()
    passwords = Passwords(HeldHasher(gate), concurrency=1, verify_queue=0)
    sharing = Sharing(
        db=blob.app.db, clock=SystemClock(), settings=blob.app.settings, downloads=blob.app.downloads,
        passwords=passwords, find_account=_not_used,
    )
    try:
        yield sharing, passwords, gate
    finally:
        gate.set()
        passwords.close()


async def test_an_attempt_refused_as_busy_is_not_counted_and_the_right_password_then_opens(alice, blob, held):
    sharing, passwords, gate = held
    node = await alice.put("holiday.jpg", b"the beach")
    token = (await alice.rpc("CreateShareLink", blob_pb2.CreateShareLinkRequest(node_id=node.node_id, password=LINK_PASSWORD))).link.token

    first = asyncio.create_task(sharing.open(token, LINK_PASSWORD))  # counted, then checked by the one worker
    await eventually(_checking(passwords), timeout=30, what="the first check to run")
    assert await _failures(blob, token) == 1
    for _ in range(3):  # the worker is taken and no one may wait: refused at once, unchecked
        with pytest.raises(ResourceExhausted) as busy:
            await sharing.open(token, LINK_PASSWORD)
        assert busy.value.reason == BUSY_REASON
    assert await _failures(blob, token) == 1  # only the attempt being checked counts

    gate.set()
    root, _children = await first
    assert str(root.node_id) == node.node_id
    assert await _failures(blob, token) == 0  # the right password clears the count


async def test_a_flood_refused_as_busy_never_locks_the_link(alice, blob, held):
    sharing, passwords, gate = held
    node = await alice.put("notes.txt", b"notes")
    token = (await alice.rpc("CreateShareLink", blob_pb2.CreateShareLinkRequest(node_id=node.node_id, password=LINK_PASSWORD))).link.token
    first = asyncio.create_task(sharing.open(token, "a wrong guess"))
    await eventually(_checking(passwords), timeout=30, what="the first check to run")
    refused = await asyncio.gather(*(sharing.open(token, f"guess {n}") for n in range(20)), return_exceptions=True)
    assert all(isinstance(r, ResourceExhausted) and r.reason == BUSY_REASON for r in refused), refused
    gate.set()
    with pytest.raises(PermissionDenied) as wrong:
        await first
    assert wrong.value.reason == "LINK_PASSWORD_WRONG"
    assert await _failures(blob, token) == 1  # the one guess that was checked
