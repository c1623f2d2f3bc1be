"""Admission to the Argon2id pool (cumulo_platform.passwords): bounded queues answered
RESOURCE_EXHAUSTED at once, a worker that new hashes never take from verifies, verifies first.
A fake hasher that waits for the test to let it go makes every step deterministic."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from cumulo_devstack.testing import eventually
from cumulo_platform.errors import ResourceExhausted
from cumulo_platform.passwords import BUSY_REASON, Passwords

BOUND = 30.0  # seconds: how long a step that must happen may take before the test fails


class GatedHasher:
    """Hashes and verifies only once `gate` is open; records the order work started in."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()  # open while Passwords makes its decoy hash
        self.started: list[str] = []
        self._lock = threading.Lock()

    def _run(self, what: str) -> None:
        with self._lock:
            self.started.append(what)
        if not self.gate.wait(BOUND):
            raise TimeoutError("the test never opened the gate")

    def hash(self, password: str) -> str:
        self._run(f"hash {password}")
        return f"hashed:{password}"

    def verify(self, password_hash: str, password: str) -> bool:
        self._run(f"verify {password}")
        return password_hash == f"hashed:{password}"


@pytest.fixture
def hasher() -> Iterator[GatedHasher]:
    gated = GatedHasher()
    try:
        yield gated
    finally:
        gated.gate.set()  # no thread left waiting


def gated_passwords(hasher: GatedHasher, **limits: int) -> Passwords:
    """Passwords on the gated hasher, its decoy hash made and forgotten."""
    passwords = Passwords(hasher, **limits)  # type: ignore[arg-type]
    hasher.started.clear()
    return passwords


async def until(condition: Callable[[], bool], what: str) -> None:
    """Waits (bounded) for `condition`, which must come whatever the machine's speed."""

    async def check() -> bool:
        return condition()

    await eventually(check, timeout=BOUND, what=what)


async def test_a_new_hash_beyond_its_queue_is_refused_at_once_with_a_retry_delay(hasher):
    passwords = gated_passwords(hasher, concurrency=2, new_hash_queue=1)
    try:
        hasher.gate.clear()
        running = asyncio.ensure_future(passwords.hash("one"))
        await until(lambda: hasher.started == ["hash one"], "the first hash to start")
        queued = asyncio.ensure_future(passwords.hash("two"))
        await until(lambda: passwords.waiting("new_hash") == 1, "the second hash to queue")
        # The gate is still shut: this answer did not wait for any hash.
        with pytest.raises(ResourceExhausted) as refused:
            await passwords.hash("three")
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.value.reason == BUSY_REASON
        assert refused.value.retry_after is not None and refused.value.retry_after.total_seconds() >= 1
        assert "three" not in str(refused.value)
        hasher.gate.set()
        assert await running == "hashed:one"
        assert await queued == "hashed:two"
        assert (passwords.running("new_hash"), passwords.waiting("new_hash")) == (0, 0)
    finally:
        passwords.close()


async def test_new_hashes_never_take_the_worker_verifies_keep(hasher):
    passwords = gated_passwords(hasher, concurrency=2, new_hash_queue=4)
    try:
        hasher.gate.clear()
        hashes = [asyncio.ensure_future(passwords.hash(f"new {n}")) for n in range(3)]
        await until(lambda: passwords.waiting("new_hash") == 2, "two hashes to queue behind the running one")
        assert passwords.running("new_hash") == 1  # the second worker is left to verifies
        verify = asyncio.ensure_future(passwords.verify("hashed:mine", "mine"))
        await until(lambda: "verify mine" in hasher.started, "the verify to start beside the hash")
        hasher.gate.set()
        assert await verify is True
        assert [await h for h in hashes] == [f"hashed:new {n}" for n in range(3)]
    finally:
        passwords.close()


async def test_a_waiting_verify_starts_before_waiting_new_hashes(hasher):
    passwords = gated_passwords(hasher, concurrency=1, new_hash_queue=4, verify_queue=4)
    try:
        hasher.gate.clear()
        first = asyncio.ensure_future(passwords.hash("first"))
        await until(lambda: hasher.started == ["hash first"], "the first hash to start")
        second = asyncio.ensure_future(passwords.hash("second"))
        await until(lambda: passwords.waiting("new_hash") == 1, "a hash to queue")
        verify = asyncio.ensure_future(passwords.verify("hashed:login", "login"))
        await until(lambda: passwords.waiting("verify") == 1, "a verify to queue")
        hasher.gate.set()
        await asyncio.gather(first, second, verify)
        assert hasher.started == ["hash first", "verify login", "hash second"]
    finally:
        passwords.close()


async def test_verifies_beyond_their_queue_are_refused_at_once(hasher):
    passwords = gated_passwords(hasher, concurrency=1, verify_queue=1)
    try:
        hasher.gate.clear()
        running = asyncio.ensure_future(passwords.verify("hashed:a", "a"))
        await until(lambda: passwords.running("verify") == 1, "a verify to run")
        queued = asyncio.ensure_future(passwords.verify("hashed:b", "wrong"))
        await until(lambda: passwords.waiting("verify") == 1, "a verify to queue")
        with pytest.raises(ResourceExhausted) as refused:
            await passwords.verify("hashed:c", "c")
        assert refused.value.reason == BUSY_REASON
        hasher.gate.set()
        assert (await running, await queued) == (True, False)
    finally:
        passwords.close()


async def test_a_caller_that_gives_up_leaves_the_queue_and_a_cancelled_hash_keeps_its_worker_until_done(hasher):
    passwords = gated_passwords(hasher, concurrency=2, new_hash_queue=1)
    try:
        hasher.gate.clear()
        running = asyncio.ensure_future(passwords.hash("running"))
        await until(lambda: passwords.running("new_hash") == 1, "a hash to run")
        waiting = asyncio.ensure_future(passwords.hash("waiting"))
        await until(lambda: passwords.waiting("new_hash") == 1, "a hash to queue")
        waiting.cancel()
        await until(lambda: passwords.waiting("new_hash") == 0, "the cancelled hash to leave the queue")
        # The running hash's caller gives up too: its thread still hashes, and holds the worker.
        running.cancel()
        await asyncio.sleep(0)
        assert passwords.running("new_hash") == 1
        queued = asyncio.ensure_future(passwords.hash("next"))
        await until(lambda: passwords.waiting("new_hash") == 1, "the next hash to wait for the worker")
        hasher.gate.set()
        assert await queued == "hashed:next"
        await until(lambda: passwords.running("new_hash") == 0, "every worker to be free")
    finally:
        passwords.close()


async def test_the_real_argon2id_hash_verifies_the_right_password_only():
    passwords = Passwords()
    try:
        stored = await passwords.hash("correct horse battery staple")
        assert stored.startswith("$argon2id$")
        assert await passwords.verify(stored, "correct horse battery staple") is True
        assert await passwords.verify(stored, "wrong horse") is False
        assert await passwords.verify(None, "correct horse battery staple") is False  # the decoy
    finally:
        passwords.close()


@pytest.mark.parametrize("bad", [{"concurrency": 0}, {"verify_queue": -1}, {"new_hash_queue": -1}])
def test_a_pool_that_could_never_hash_is_refused(bad):
    with pytest.raises(ValueError):
        Passwords(GatedHasher(), **bad)  # type: ignore[arg-type]


async def test_admitted_runs_once_a_worker_is_the_checks_and_a_refusal_there_gives_it_back(hasher):
    """A caller counts an attempt in `admitted`: it runs for a check that got a worker, before
    the hash, not for one refused as busy; when it refuses, nothing is hashed and the worker
    is free again."""
    passwords = gated_passwords(hasher, concurrency=1, verify_queue=0)
    counted: list[str] = []

    def counting(name: str) -> Callable[[], Any]:
        async def admitted() -> None:
            counted.append(name)

        return admitted

    async def refusing() -> None:
        raise ResourceExhausted("locked", reason="LOCKED")

    try:
        hasher.gate.clear()
        first = asyncio.ensure_future(passwords.verify("hashed:one", "one", admitted=counting("one")))
        await until(lambda: hasher.started == ["verify one"], "the first check to start")
        assert counted == ["one"]  # before its hash
        with pytest.raises(ResourceExhausted) as busy:
            await passwords.verify("hashed:two", "two", admitted=counting("two"))
        assert busy.value.reason == BUSY_REASON and counted == ["one"]  # not counted
        hasher.gate.set()
        assert await first is True
        with pytest.raises(ResourceExhausted) as locked:
            await passwords.verify("hashed:three", "three", admitted=refusing)
        assert locked.value.reason == "LOCKED"
        assert hasher.started == ["verify one"] and passwords.running("verify") == 0
        assert await passwords.verify("hashed:four", "four", admitted=counting("four")) is True
    finally:
        passwords.close()
