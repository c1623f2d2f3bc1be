"""The events consumers gave up on (see `consumer`), for operators: list them, replay one after
the fix is deployed, or drop one. `cumulo-admin events dead-letters|replay|drop` calls these.

A replay publishes the event's own bytes again on its original subject with a message id of
its own (the event id is still inside): the consumer that failed applies it now; every other
consumer of the subject has its id in `processed_events` already and skips it (batch
consumers' effects are idempotent by themselves)."""

from __future__ import annotations

import dataclasses
import uuid

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from cumulo.events.v1 import events_pb2
from cumulo_platform.consumer import (
    ATTEMPTS_HEADER,
    CONSUMER_HEADER,
    ERROR_HEADER,
    FAILED_AT_HEADER,
    SUBJECT_HEADER,
)
from cumulo_platform.events import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM


class NoSuchDeadLetter(LookupError):
    pass


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    id: int  # its sequence in the dead-letter stream: what `replay` and `drop` take
    consumer: str
    subject: str  # where it came from, and where a replay sends it
    error: str
    attempts: int
    failed_at: str
    event_id: str  # "" when the envelope itself could not be read
    event_type: str
    data: bytes


def _read(sequence: int, subject: str, headers: dict[str, str] | None, data: bytes) -> DeadLetter:
    headers = headers or {}
    try:
        envelope = events_pb2.Envelope.FromString(data)
        event_id, event_type = envelope.event_id, envelope.type
    except Exception:
        event_id, event_type = "", ""
    return DeadLetter(
        id=sequence,
        consumer=headers.get(CONSUMER_HEADER, subject.rsplit(".", 1)[-1]),
        subject=headers.get(SUBJECT_HEADER, ""),
        error=headers.get(ERROR_HEADER, ""),
        attempts=int(headers.get(ATTEMPTS_HEADER, "0") or 0),
        failed_at=headers.get(FAILED_AT_HEADER, ""),
        event_id=event_id,
        event_type=event_type,
        data=data,
    )


async def get(js: JetStreamContext, dead_letter_id: int) -> DeadLetter:
    try:
        raw = await js.get_msg(DEAD_LETTER_STREAM, seq=dead_letter_id)
    except NotFoundError:
        raise NoSuchDeadLetter(f"no dead letter {dead_letter_id}") from None
    return _read(dead_letter_id, raw.subject or "", raw.headers, raw.data or b"")


async def listing(js: JetStreamContext, *, consumer: str = "", limit: int = 100) -> list[DeadLetter]:
    """The oldest `limit` dead letters (of one consumer, if named)."""
    subject = DEAD_LETTER_PREFIX + (consumer or ">")
    found: list[DeadLetter] = []
    sequence = 1
    while len(found) < limit:
        try:  # the next one at or after `sequence`, skipping those replayed or dropped
            raw = await js.get_msg(DEAD_LETTER_STREAM, seq=sequence, subject=subject, next=True)
        except NotFoundError:
            break
        assert raw.seq is not None
        found.append(_read(raw.seq, raw.subject or "", raw.headers, raw.data or b""))
        sequence = raw.seq + 1
    return found


async def replay(js: JetStreamContext, dead_letter_id: int) -> DeadLetter:
    letter = await get(js, dead_letter_id)
    if not letter.subject:
        raise NoSuchDeadLetter(f"dead letter {dead_letter_id} does not say where it came from")
    await js.publish(letter.subject, letter.data, headers={"Nats-Msg-Id": f"replay:{dead_letter_id}:{uuid.uuid4()}"})
    await js.delete_msg(DEAD_LETTER_STREAM, dead_letter_id)
    return letter


async def drop(js: JetStreamContext, dead_letter_id: int) -> DeadLetter:
    letter = await get(js, dead_letter_id)
    await js.delete_msg(DEAD_LETTER_STREAM, dead_letter_id)
    return letter
