"""A poison event reaches a real service: its consumer retries it a bounded number of times,
parks it in the dead-letter stream and goes on; an operator sees it with
`cumulo-admin events dead-letters`, replays it or drops it."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid

import pytest

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import eventually, identity
from cumulo_devstack.testing.cli import run_command
from cumulo_platform import dead_letters
from cumulo_platform.db import make_envelope
from cumulo_platform.event_types import event_subject
from cumulo_platform.events import Nats
from cumulo_platform.identity import OPERATOR

pytestmark = pytest.mark.timeout(180)


async def admin(nats_url: str, *args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    """`cumulo-admin events ...`, in-process; `process=True` runs the real console script (this
    test is the events group's process smoke test)."""
    return await run_command("cumulo-admin", "events", *args, environ={"NATS_URL": nats_url}, process=process, timeout=60)


async def _publish_purge_request(bus: Nats, account_id: str) -> events_pb2.Envelope:
    """What the lifecycle's saga publishes, but with an account id that is not one."""
    envelope = make_envelope(
        "purge.requested",
        events_pb2.PurgeRequested(account_id=account_id, services=["sync"], attempt=1),
        account_id=account_id,
        producer="lifecycle",
        occurred_at=dt.datetime.now(dt.UTC),
    )
    js = await bus.jetstream()
    await js.publish(event_subject(envelope.producer, envelope.type), envelope.SerializeToString(), headers={"Nats-Msg-Id": envelope.event_id})
    return envelope


async def test_a_malformed_purge_request_is_parked_listed_replayed_and_dropped(infra, sync, user):
    client, _ = user
    bus = Nats(infra.nats.url, identity=identity(OPERATOR))
    try:
        js = await bus.jetstream()
        poison = await _publish_purge_request(bus, f"not-a-uuid-{uuid.uuid4().hex[:6]}")

        async def parked() -> list[dead_letters.DeadLetter]:
            return [d for d in await dead_letters.listing(js, consumer="sync-purge") if d.event_id == poison.event_id]

        [letter] = await eventually(parked, timeout=60, what="sync to park the malformed purge request")
        assert letter.attempts == 8 and letter.event_type == "purge.requested"
        assert "account_id" in letter.error  # the rule it broke, named

        # The service goes on serving while (and after) it gave up on the event.
        assert await client.sync.zones() == []

        listed = await admin(infra.nats.url, "dead-letters", "--consumer", "sync-purge", process=True)
        assert listed.returncode == 0, listed.stderr
        line = next(row for row in listed.stdout.splitlines() if row.split()[:1] == [str(letter.id)])
        assert "sync-purge" in line and "purge.requested" in line and "8" in line.split()

        # Replayed before a fix, it fails the same way and is parked again, under a new id.
        replayed = await admin(infra.nats.url, "replay", str(letter.id))
        assert replayed.returncode == 0, replayed.stderr
        assert f"replayed dead letter {letter.id}" in replayed.stdout
        [again] = await eventually(parked, timeout=60, what="the replayed event to be parked again")
        assert again.id != letter.id

        dropped = await admin(infra.nats.url, "drop", str(again.id))
        assert dropped.returncode == 0 and f"dropped dead letter {again.id}" in dropped.stdout
        assert await parked() == []
        missing = await admin(infra.nats.url, "replay", str(again.id))
        assert missing.returncode == 1 and f"no dead letter {again.id}" in missing.stderr
    finally:
        await bus.close()
