"""`cumulo-admin events replay|drop` say what they did: a replay is published again on the
event's subject, where every consumer of that subject gets it (those that applied it already
skip it), not only the consumer that parked it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import nats_connect
from cumulo_devstack.testing.cli import run_command
from cumulo_platform.consumer import ATTEMPTS_HEADER, CONSUMER_HEADER, ERROR_HEADER, FAILED_AT_HEADER, SUBJECT_HEADER
from cumulo_platform.db import make_envelope
from cumulo_platform.event_types import SUBJECT_PREFIX
from cumulo_platform.events import DEAD_LETTER_PREFIX, ensure_streams

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def jetstream(infra):
    connection = await nats_connect(infra.nats.url)
    try:
        js = connection.jetstream()
        await ensure_streams(js)
        yield connection, js
    finally:
        await connection.close()


async def parked(js, data: bytes) -> tuple[int, str, str]:
    """A dead letter as a consumer leaves it (its id, its consumer, its subject), on a subject
    of its own that no service consumes."""
    consumer, subject = f"test-{uuid.uuid4().hex[:8]}", f"{SUBJECT_PREFIX}test.replayed-{uuid.uuid4().hex[:8]}"
    headers = {
        CONSUMER_HEADER: consumer, SUBJECT_HEADER: subject, ERROR_HEADER: "boom", ATTEMPTS_HEADER: "8",
        FAILED_AT_HEADER: dt.datetime.now(dt.UTC).isoformat(),
    }
    ack = await js.publish(DEAD_LETTER_PREFIX + consumer, data, headers=headers)
    return ack.seq, consumer, subject


async def admin(infra, *args: str) -> tuple[int, str, str]:
    result = await run_command("cumulo-admin", "events", *args, environ={"NATS_URL": infra.nats.url}, timeout=60)
    return result.returncode, result.stdout, result.stderr


async def test_a_replay_says_it_went_out_on_the_subject_to_every_consumer_of_it(infra, jetstream):
    connection, js = jetstream
    envelope = make_envelope(
        "test.replayed", events_pb2.PurgeRequested(account_id="x"), account_id="x", producer="test", occurred_at=dt.datetime.now(dt.UTC)
    )
    letter_id, consumer, subject = await parked(js, envelope.SerializeToString())
    listener = await connection.subscribe(subject)

    code, out, err = await admin(infra, "replay", str(letter_id))
    assert code == 0, err
    assert out == (
        f"replayed dead letter {letter_id} (test.replayed event {envelope.event_id}, parked by {consumer}): "
        f"sent again on {subject}; every consumer of it gets it, those that applied it already skip it\n"
    )
    assert (await listener.next_msg(timeout=30)).data == envelope.SerializeToString()


async def test_an_undecodable_letter_is_named_as_such(infra, jetstream):
    _, js = jetstream
    letter_id, consumer, subject = await parked(js, b"not an envelope")
    code, out, err = await admin(infra, "replay", str(letter_id))
    assert code == 0, err
    assert out.startswith(f"replayed dead letter {letter_id} (an event that could not be decoded, parked by {consumer}): ")
    letter_id, consumer, _ = await parked(js, b"not an envelope")
    code, out, err = await admin(infra, "drop", str(letter_id))
    assert (code, out) == (0, f"dropped dead letter {letter_id} (an event that could not be decoded, parked by {consumer}); "
                               "it will not be delivered again\n"), err
