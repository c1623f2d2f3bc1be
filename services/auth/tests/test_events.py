"""Auth's events reach JetStream (stream CUMULO_EVENTS, subject cumulo.events.<type>) through
the outbox, in the envelope, and never carry passwords or contact values."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import secrets
import uuid

import grpc
import nats
import nats.errors
from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError
from nats.js import api as js_api
from nats.js.errors import NotFoundError

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.events.v1 import events_pb2
from cumulo_sdk.errors import CumuloRpcError

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a completely new passphrase"
TERMS = "2026-11"
ADULT = auth_pb2.Date(year=1990, month=5, day=17)
STREAM = "CUMULO_EVENTS"
WAIT_SECONDS = 20.0


def new_email() -> str:
    return f"evt-{uuid.uuid4().hex[:12]}@example.com"


def new_phone() -> str:
    return "+86135" + "".join(secrets.choice("0123456789") for _ in range(8))


def new_address() -> str:
    return f"2001:db8:7::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


async def call(client, method, request, token=None):
    metadata = client.metadata(token) + [("x-forwarded-for", new_address())]
    try:
        return await method(request, metadata=metadata, timeout=20)
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


@dataclasses.dataclass
class Member:
    account_id: str
    email: str
    phone: str
    access_token: str
    session_id: str


async def new_member(client) -> Member:
    email, phone = new_email(), new_phone()
    request = auth_pb2.RegisterRequest(email=email, phone=phone, password=PASSWORD, birth_date=ADULT, accepted_terms_version=TERMS)
    await call(client, client.auth.Register, request)
    response = await call(client, client.auth.Login, auth_pb2.LoginRequest(login=email, password=PASSWORD))
    return Member(response.account.account_id, email, phone, response.tokens.access_token, response.tokens.session_id)


@dataclasses.dataclass
class Delivered:
    envelope: events_pb2.Envelope
    data: bytes
    headers: dict


async def events_about(nats_url: str, event_type: str, account_id: str, *, at_least: int = 1) -> list[Delivered]:
    """Every event of `event_type` about `account_id` in the stream, waiting (bounded) until
    at least `at_least` have been published."""
    subject = f"cumulo.events.{event_type}"
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            found: list[Delivered] = []
            try:
                subscription = await js.pull_subscribe(
                    subject,
                    stream=STREAM,
                    config=js_api.ConsumerConfig(
                        ack_policy=js_api.AckPolicy.NONE, deliver_policy=js_api.DeliverPolicy.ALL, inactive_threshold=30
                    ),
                )
            except NotFoundError:  # the stream appears with the first published event
                subscription = None
            if subscription is not None:
                pending = (await subscription.consumer_info()).num_pending
                while pending > 0:
                    try:
                        messages = await subscription.fetch(min(pending, 256), timeout=2)
                    except nats.errors.TimeoutError:
                        if loop.time() > deadline:
                            break
                        continue  # a busy machine: the pending messages are there, ask again
                    pending -= len(messages)
                    for message in messages:
                        try:
                            envelope = events_pb2.Envelope.FromString(message.data)
                        except DecodeError:  # another test's deliberately broken message
                            continue
                        if envelope.account_id == account_id:
                            found.append(Delivered(envelope, message.data, dict(message.headers or {})))
                await subscription.unsubscribe()
            if len(found) >= at_least:
                return found
            if loop.time() > deadline:
                raise AssertionError(f"no {event_type} event about {account_id} within {WAIT_SECONDS}s (found {len(found)})")
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


def check_envelope(delivered: Delivered, event_type: str, account_id: str, payload_type):
    envelope = delivered.envelope
    assert envelope.type == event_type
    assert envelope.account_id == account_id
    assert envelope.producer == "auth"
    assert uuid.UUID(envelope.event_id)
    assert envelope.occurred_at.seconds > 0
    # JetStream de-duplicates on the event id
    assert delivered.headers.get("Nats-Msg-Id") == envelope.event_id
    payload = payload_type()
    assert envelope.payload.Unpack(payload), envelope.payload.type_url
    return payload


def assert_no_secrets(delivered: Delivered, member: Member, *extra: str) -> None:
    for secret in (PASSWORD, NEW_PASSWORD, member.email, member.phone, *extra):
        assert secret.encode() not in delivered.data, secret


async def test_account_created_is_published(direct, infra):
    member = await new_member(direct)
    [created] = await events_about(infra.nats.url, "account.created", member.account_id)
    payload = check_envelope(created, "account.created", member.account_id, events_pb2.AccountCreated)
    assert payload.account_id == member.account_id
    assert payload.minor is False
    assert payload.guardian_account_id == ""
    assert payload.created_at.seconds > 0
    assert_no_secrets(created, member)


async def test_account_created_for_a_minor_names_the_guardian(direct, infra):
    guardian = await new_member(direct)
    email = new_email()
    request = auth_pb2.CreateMinorAccountRequest(
        email=email, password="purple monkey dishwasher", birth_date=auth_pb2.Date(year=2018, month=1, day=1), guardian_consent=True
    )
    minor = (await call(direct, direct.auth.CreateMinorAccount, request, guardian.access_token)).account
    [created] = await events_about(infra.nats.url, "account.created", minor.account_id)
    payload = check_envelope(created, "account.created", minor.account_id, events_pb2.AccountCreated)
    assert payload.minor is True
    assert payload.guardian_account_id == guardian.account_id
    assert_no_secrets(created, guardian, email, "purple monkey dishwasher")


async def test_logged_in_is_published_per_session(direct, infra):
    member = await new_member(direct)
    [logged_in] = await events_about(infra.nats.url, "account.logged_in", member.account_id)
    payload = check_envelope(logged_in, "account.logged_in", member.account_id, events_pb2.LoggedIn)
    assert payload.session_id == member.session_id
    assert payload.client_id == "cumulo-cli"
    assert_no_secrets(logged_in, member)


async def test_contact_changed_names_the_fields_not_the_values(direct, infra):
    member = await new_member(direct)
    new = new_email()
    request = auth_pb2.UpdateContactsRequest(email=new, phone="", update_mask=["email", "phone"])
    await call(direct, direct.auth.UpdateContacts, request, member.access_token)
    [changed] = await events_about(infra.nats.url, "account.contact_changed", member.account_id)
    payload = check_envelope(changed, "account.contact_changed", member.account_id, events_pb2.ContactChanged)
    assert sorted(payload.changed) == ["email", "phone"]
    assert_no_secrets(changed, member, new)


async def test_status_changed_is_published(direct, infra, auth, clock):
    member = await new_member(direct)
    until = (clock.now() + dt.timedelta(days=3)).replace(microsecond=0)
    until_stamp = timestamp_pb2.Timestamp()
    until_stamp.FromDatetime(until)
    async with grpc.aio.insecure_channel(auth.target) as channel:
        await auth_pb2_grpc.AuthInternalServiceStub(channel).SetAccountStatus(
            auth_pb2.SetAccountStatusRequest(
                account_id=member.account_id,
                status=auth_pb2.ACCOUNT_STATUS_SUSPENDED,
                suspended_until=until_stamp,
                reason="chargeback",
                actor="ops:carol",
            ),
            timeout=20,
        )
    [changed] = await events_about(infra.nats.url, "account.status_changed", member.account_id)
    payload = check_envelope(changed, "account.status_changed", member.account_id, events_pb2.AccountStatusChanged)
    assert (payload.status, payload.reason, payload.actor) == ("suspended", "chargeback", "ops:carol")
    assert payload.suspended_until.ToDatetime(tzinfo=dt.timezone.utc) == until
    assert_no_secrets(changed, member)


async def test_account_cancelled_is_published_once(direct, infra):
    member = await new_member(direct)
    await call(direct, direct.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=PASSWORD), member.access_token)
    [cancelled] = await events_about(infra.nats.url, "account.cancelled", member.account_id)
    payload = check_envelope(cancelled, "account.cancelled", member.account_id, events_pb2.AccountCancelled)
    assert payload.account_id == member.account_id
    assert payload.cancelled_at.seconds > 0
    assert_no_secrets(cancelled, member)


async def test_password_change_publishes_no_secret_anywhere(direct, infra):
    member = await new_member(direct)
    await call(
        direct,
        direct.auth.ChangePassword,
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=NEW_PASSWORD),
        member.access_token,
    )
    # the last event of the member's story: everything before it has been relayed too
    await call(direct, direct.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=NEW_PASSWORD), member.access_token)
    await events_about(infra.nats.url, "account.cancelled", member.account_id)
    everything = await events_about(infra.nats.url, ">", member.account_id)
    assert {d.envelope.type for d in everything} >= {"account.created", "account.logged_in", "account.cancelled"}
    for delivered in everything:
        assert_no_secrets(delivered, member)
