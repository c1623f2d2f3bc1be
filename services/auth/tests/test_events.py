"""Auth's events reach JetStream (stream CUMULO_EVENTS, subject cumulo.events.auth.<type>) through
the outbox, in the envelope, and never carry passwords or contact values."""

from __future__ import annotations

import datetime as dt
import uuid

from google.protobuf import timestamp_pb2

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.events.v1 import events_pb2
from cumulo_devstack.testing import PASSWORD, Delivered, allowed_caller, call, read_stream, unique_email
from cumulo_platform.event_types import event_filter

NEW_PASSWORD = "a completely new passphrase"


def events_about(nats_url: str, event_type: str, account_id: str):
    """Every event of `event_type` about `account_id` in the stream, waiting (bounded) until
    one has been published."""
    return read_stream(
        nats_url,
        event_filter(event_type),
        lambda envelope: envelope.account_id == account_id,
        what=f"{event_type} events about {account_id}",
    )


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


def assert_no_secrets(delivered: Delivered, member, *extra: str) -> None:
    for secret in (PASSWORD, NEW_PASSWORD, member.email, member.phone, *extra):
        assert secret.encode() not in delivered.data, secret


async def test_account_created_is_published(direct, infra, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    [created] = await events_about(infra.nats.url, "account.created", member.account_id)
    payload = check_envelope(created, "account.created", member.account_id, events_pb2.AccountCreated)
    assert payload.account_id == member.account_id
    assert payload.minor is False
    assert payload.guardian_account_id == ""
    assert payload.created_at.seconds > 0
    assert_no_secrets(created, member)


async def test_account_created_for_a_minor_names_the_guardian(direct, infra, accounts):
    guardian = await accounts.new_member(direct, with_phone=True)
    email = unique_email()
    request = auth_pb2.CreateMinorAccountRequest(
        email=email, password="purple monkey dishwasher", birth_date=auth_pb2.Date(year=2018, month=1, day=1), guardian_consent=True
    )
    minor = (await call(direct, direct.auth.CreateMinorAccount, request, guardian.access_token)).account
    [created] = await events_about(infra.nats.url, "account.created", minor.account_id)
    payload = check_envelope(created, "account.created", minor.account_id, events_pb2.AccountCreated)
    assert payload.minor is True
    assert payload.guardian_account_id == guardian.account_id
    assert_no_secrets(created, guardian, email, "purple monkey dishwasher")


async def test_logged_in_is_published_per_session(direct, infra, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    [logged_in] = await events_about(infra.nats.url, "account.logged_in", member.account_id)
    payload = check_envelope(logged_in, "account.logged_in", member.account_id, events_pb2.LoggedIn)
    assert payload.session_id == member.session_id
    assert payload.client_id == "cumulo-cli"
    assert_no_secrets(logged_in, member)


async def test_contact_changed_names_the_fields_not_the_values(direct, infra, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    new = unique_email()
    request = auth_pb2.UpdateContactsRequest(email=new, phone="", update_mask=["email", "phone"])
    await call(direct, direct.auth.UpdateContacts, request, member.access_token)
    [changed] = await events_about(infra.nats.url, "account.contact_changed", member.account_id)
    payload = check_envelope(changed, "account.contact_changed", member.account_id, events_pb2.ContactChanged)
    assert sorted(payload.changed) == ["email", "phone"]
    assert_no_secrets(changed, member, new)


async def test_status_changed_is_published(direct, infra, auth, clock, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    until = (clock.now() + dt.timedelta(days=3)).replace(microsecond=0)
    until_stamp = timestamp_pb2.Timestamp()
    until_stamp.FromDatetime(until)
    async with allowed_caller(auth.target, auth_pb2_grpc.AuthInternalServiceStub) as channel:
        await channel.SetAccountStatus(
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
    assert (payload.status, payload.reason, payload.actor) == ("suspended", "chargeback", "moderation: ops:carol")
    assert payload.suspended_until.ToDatetime(tzinfo=dt.UTC) == until
    assert_no_secrets(changed, member)


async def test_account_cancelled_is_published_once(direct, infra, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    await call(direct, direct.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=PASSWORD), member.access_token)
    [cancelled] = await events_about(infra.nats.url, "account.cancelled", member.account_id)
    payload = check_envelope(cancelled, "account.cancelled", member.account_id, events_pb2.AccountCancelled)
    assert payload.account_id == member.account_id
    assert payload.cancelled_at.seconds > 0
    assert_no_secrets(cancelled, member)


async def test_password_change_publishes_no_secret_anywhere(direct, infra, accounts):
    member = await accounts.new_member(direct, with_phone=True)
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
