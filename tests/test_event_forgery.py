"""Events that cannot be forged: NATS takes each client's identity from its certificate of the
internal CA and lets it publish on its own subjects only (cumulo_platform.bus_access); a
consumer takes an event only when its envelope's producer is the one its subject names and may
produce its type (cumulo_platform.event_types.forgery). Against the session's NATS and services."""

from __future__ import annotations

import datetime as dt
import ssl
import uuid

import nats
import nats.errors
import pytest
from nats.js import api as js_api

from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import PASSWORD, eventually, nats_connect
from cumulo_platform import dead_letters
from cumulo_platform.db import make_envelope
from cumulo_platform.event_types import event_subject, forgery
from cumulo_platform.events import STREAM_NAME


def purge_request(account_id: str, producer: str) -> events_pb2.Envelope:
    return make_envelope(
        "purge.requested", events_pb2.PurgeRequested(account_id=account_id, reason="forged"), account_id=account_id,
        producer=producer, occurred_at=dt.datetime.now(dt.UTC),
    )


class Violations:
    """What the server told a client it refused (nats-py hands it to error_cb)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def count(self, word: str) -> int:
        return sum(word in seen.lower() for seen in self.seen)

    async def at_least(self, number: int, word: str = "permissions violation") -> bool:
        return self.count(word) >= number

    async def record(self, error: Exception) -> None:
        self.seen.append(str(error))


@pytest.fixture
async def as_blob(infra):
    violations = Violations()
    connection = await nats_connect(infra.nats.url, as_="blob", error_cb=violations.record, allow_reconnect=False)
    try:
        yield connection, violations
    finally:
        await connection.close()


async def test_a_service_cannot_publish_on_another_services_subject(as_blob, people):
    """blob's credentials, the lifecycle's purge.requested: the server refuses it, nothing is stored."""
    connection, violations = as_blob
    person = await people.new("phone")
    forged = purge_request(person.account_id, "lifecycle")
    js = connection.jetstream(timeout=2)
    with pytest.raises(nats.errors.TimeoutError):  # no stream ever acknowledges it
        await js.publish(event_subject("lifecycle", "purge.requested"), forged.SerializeToString())
    await eventually(lambda: violations.at_least(1), what="the server's refusal")
    assert (await person.client.whoami()).account.account_id == person.account_id  # still there


async def test_a_forged_envelope_on_the_services_own_subject_is_parked_not_applied(as_blob, infra, people):
    """blob may publish on its own subjects, but not as the lifecycle: every purge participant
    parks the event as forged, and the account goes on as before."""
    connection, _ = as_blob
    person = await people.new("phone")
    forged = purge_request(person.account_id, "lifecycle")
    subject = event_subject("blob", "purge.requested")
    await connection.jetstream(timeout=5).publish(subject, forged.SerializeToString(), headers={"Nats-Msg-Id": forged.event_id})

    async def parked_everywhere() -> bool:
        operator = await nats_connect(infra.nats.url)
        try:
            letters = await dead_letters.listing(operator.jetstream(timeout=5), limit=10_000)
        finally:
            await operator.close()
        mine = {letter.consumer for letter in letters if letter.subject == subject and "forged" in letter.error and letter.event_id == forged.event_id}
        return {"auth-purge", "blob-purge", "sync-purge", "locator-purge", "moderation-purge"} <= mine

    await eventually(parked_everywhere, timeout=30, what="every purge participant to park the forged request")
    assert (await person.client.whoami()).account.account_id == person.account_id
    await person.client.login(person.email, PASSWORD, device_name="again")  # not purged: it logs in


async def test_a_service_cannot_read_through_another_services_consumer_nor_delete_the_stream(as_blob):
    connection, violations = as_blob
    js = connection.jetstream(timeout=2)
    with pytest.raises(nats.errors.TimeoutError):
        await js.add_consumer(STREAM_NAME, js_api.ConsumerConfig(durable_name="lifecycle-access", ack_policy=js_api.AckPolicy.EXPLICIT))
    with pytest.raises(nats.errors.TimeoutError):
        await js.delete_stream(STREAM_NAME)
    assert await js.stream_info(STREAM_NAME)  # its own reading of the stream still works
    await eventually(lambda: violations.at_least(2), what="both refusals")


async def test_a_service_cannot_listen_on_another_services_live_subject(as_blob):
    connection, violations = as_blob
    await connection.subscribe("cumulo.locator.commands.*")
    await connection.flush()
    await eventually(lambda: violations.at_least(1, "subscription"), what="the refused subscription")


async def test_a_client_without_an_identity_is_not_let_on_the_bus(infra):
    """It trusts the server (the internal CA) but proves nothing: the server ends the handshake
    (the client sees the alert, or the connection reset after it)."""
    trusting = ssl.create_default_context(cafile=str(infra.identities / "ca.crt"))
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await nats.connect(
            infra.nats.url, tls=trusting, tls_hostname="nats", connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0
        )


def test_the_consumer_check_names_what_is_wrong():
    account = str(uuid.uuid4())
    assert forgery(event_subject("lifecycle", "purge.requested"), purge_request(account, "lifecycle")) is None
    assert "names the producer 'lifecycle', its subject 'blob'" in (forgery(event_subject("blob", "purge.requested"), purge_request(account, "lifecycle")) or "")
    assert "'blob' does not produce 'purge.requested'" in (forgery(event_subject("blob", "purge.requested"), purge_request(account, "blob")) or "")
