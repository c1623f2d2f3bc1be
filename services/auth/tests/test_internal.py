"""AuthInternalService (service to service, never routed by the gateway) and the client-app
check every public call passes."""

from __future__ import annotations

import datetime as dt
import uuid

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf import timestamp_pb2

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.testing import PASSWORD, allowed_caller, bare_rpc_error, call, code_sent_to, expect_error, rpc, transport_for
from cumulo_sdk import Cumulo

TERMS = "2026-11"
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
INVALID = grpc.StatusCode.INVALID_ARGUMENT
ACTIVE = auth_pb2.ACCOUNT_STATUS_ACTIVE
SUSPENDED = auth_pb2.ACCOUNT_STATUS_SUSPENDED
TERMINATED = auth_pb2.ACCOUNT_STATUS_TERMINATED


def stamp(when: dt.datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(when)
    return value


@pytest.fixture(scope="module")
async def internal(auth):
    async with allowed_caller(auth.target, auth_pb2_grpc.AuthInternalServiceStub) as internal:
        yield internal


def set_status(internal, account_id, status, *, reason="abuse report #42", actor="ops:alice", until=None):
    request = auth_pb2.SetAccountStatusRequest(account_id=account_id, status=status, reason=reason, actor=actor)
    if until is not None:
        request.suspended_until.CopyFrom(stamp(until))
    return rpc(internal.SetAccountStatus, request)


# --- SetAccountStatus --------------------------------------------------------------------------


async def test_suspended_account_cannot_log_in_refresh_or_call(direct, internal, accounts):
    member = await accounts.new_member(direct)
    account = (await set_status(internal, member.account_id, SUSPENDED)).account
    assert account.status == SUSPENDED
    await expect_error(accounts.login_call(direct, member.email), DENIED, reason="ACCOUNT_SUSPENDED")
    await expect_error(accounts.refresh(direct, member.refresh_token), DENIED, reason="ACCOUNT_SUSPENDED")
    # The tokens it held are cut off at once, everywhere (cumulo_platform.revocations).
    await expect_error(accounts.get_account(direct, member.access_token), UNAUTHENTICATED, reason="TOKEN_REVOKED")


async def test_reactivated_account_works_again_with_its_old_session(direct, internal, accounts):
    member = await accounts.new_member(direct)
    await set_status(internal, member.account_id, SUSPENDED)
    await expect_error(accounts.refresh(direct, member.refresh_token), DENIED, reason="ACCOUNT_SUSPENDED")
    account = (await set_status(internal, member.account_id, ACTIVE, reason="appeal granted")).account
    assert account.status == ACTIVE
    assert (await accounts.login(direct, member.email)).account_id == member.account_id
    # Suspension ended no session, and the refused refresh did not use up the refresh token;
    # the access token from before the suspension stays cut off, a refreshed one works.
    await expect_error(accounts.get_account(direct, member.access_token), UNAUTHENTICATED, reason="TOKEN_REVOKED")
    refreshed = (await accounts.refresh(direct, member.refresh_token)).tokens
    assert refreshed.session_id == member.session_id
    assert (await accounts.get_account(direct, refreshed.access_token)).account.status == ACTIVE


async def test_suspension_with_an_end_lifts_by_itself(direct, internal, clock, accounts):
    member = await accounts.new_member(direct)
    until = clock.now() + dt.timedelta(days=7)
    await set_status(internal, member.account_id, SUSPENDED, until=until)
    await expect_error(accounts.login_call(direct, member.email), DENIED, reason="ACCOUNT_SUSPENDED")
    clock.advance(dt.timedelta(days=7, minutes=1))
    assert (await accounts.login(direct, member.email)).account_id == member.account_id


async def test_suspension_ending_in_the_past_is_invalid_argument(direct, internal, clock, accounts):
    member = await accounts.new_member(direct)
    await expect_error(
        set_status(internal, member.account_id, SUSPENDED, until=clock.now() - dt.timedelta(minutes=1)),
        INVALID,
        field="suspended_until",
    )
    assert (await accounts.get_account(direct, member.access_token)).account.status == ACTIVE


async def test_terminated_account_loses_its_sessions_for_good(direct, internal, accounts, hold_deletion):
    member = await accounts.new_member(direct)
    other = await accounts.login(direct, member.email)
    # A termination starts the account's deletion; held, the account stays terminated while
    # the test looks (unheld, the saga may purge it first: login would answer ACCOUNT_DELETED).
    await hold_deletion(member.account_id)
    account = (await set_status(internal, member.account_id, TERMINATED, reason="terms violation")).account
    assert account.status == TERMINATED
    for session in (member, other):
        await expect_error(accounts.get_account(direct, session.access_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
        await expect_error(accounts.refresh(direct, session.refresh_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
    await expect_error(accounts.login_call(direct, member.email), DENIED, reason="ACCOUNT_TERMINATED")
    await expect_error(
        set_status(internal, member.account_id, ACTIVE, reason="oops"), grpc.StatusCode.FAILED_PRECONDITION, reason="ACCOUNT_CLOSED"
    )


async def test_cancelled_account_cannot_be_reactivated_internally(direct, internal, accounts, hold_deletion):
    member = await accounts.new_member(direct)
    await hold_deletion(member.account_id)
    await call(direct, direct.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=PASSWORD), member.access_token)
    await expect_error(
        set_status(internal, member.account_id, ACTIVE, reason="support ticket"),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="ACCOUNT_CLOSED",
    )
    await expect_error(accounts.login_call(direct, member.email), DENIED, reason="ACCOUNT_CANCELLED")


@pytest.fixture(scope="module")
async def bystander(module_client, accounts):
    """An account that bad SetAccountStatus requests name; it must stay active."""
    return await accounts.new_member(module_client)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (dict(reason=""), "reason"),
        (dict(reason="   "), "reason"),
        (dict(actor=""), "actor"),
        (dict(status=auth_pb2.ACCOUNT_STATUS_UNSPECIFIED), "status"),
        (dict(status=auth_pb2.ACCOUNT_STATUS_CANCELLED), "status"),
        (dict(status=99), "status"),
        (dict(account_id="not-an-account"), "account_id"),
        (dict(account_id=""), "account_id"),
    ],
    ids=["no-reason", "blank-reason", "no-actor", "unspecified-status", "cancelled-status", "unknown-status", "bad-id", "empty-id"],
)
async def test_bad_set_account_status_request_is_invalid_argument(direct, internal, bystander, changes, field, accounts):
    request = dict(account_id=bystander.account_id, status=SUSPENDED, reason="spam", actor="ops:bob") | changes
    await expect_error(rpc(internal.SetAccountStatus, auth_pb2.SetAccountStatusRequest(**request)), INVALID, field=field)
    assert (await accounts.get_account(direct, bystander.access_token)).account.status == ACTIVE


async def test_set_status_of_an_unknown_account_is_not_found(internal):
    await expect_error(set_status(internal, str(uuid.uuid4()), SUSPENDED), grpc.StatusCode.NOT_FOUND)


# --- GetAccountContacts ------------------------------------------------------------------------


async def test_get_account_contacts_gives_the_verified_ones(direct, internal, accounts, lifecycle, mail, sms):
    member = await accounts.new_member(direct, with_phone=True)

    async def contacts() -> tuple[str, str]:
        found = await rpc(internal.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id=member.account_id))
        return found.email, found.phone

    # Unverified: the notices it is asked for must reach nobody.
    assert await contacts() == ("", "")
    for channel, catcher, destination in (("email", mail, member.email), ("phone", sms, member.phone)):
        await call(direct, direct.auth.SendVerificationCode, auth_pb2.SendVerificationCodeRequest(channel=channel), member.access_token)
        code = await code_sent_to(catcher, destination)
        await call(direct, direct.auth.VerifyContact, auth_pb2.VerifyContactRequest(channel=channel, code=code), member.access_token)
    assert await contacts() == (member.email, member.phone)
    await expect_error(
        rpc(internal.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id="nope")), INVALID, field="account_id"
    )
    await expect_error(
        rpc(internal.GetAccountContacts, auth_pb2.GetAccountContactsRequest(account_id=str(uuid.uuid4()))),
        grpc.StatusCode.NOT_FOUND,
    )


# --- GetSigningKeys ------------------------------------------------------------------------------


async def test_signing_keys_verify_the_access_tokens(direct, internal, accounts):
    member = await accounts.new_member(direct)
    kid = jwt.get_unverified_header(member.access_token)["kid"]
    keys = (await rpc(internal.GetSigningKeys, auth_pb2.GetSigningKeysRequest())).keys
    by_id = {k.key_id: k for k in keys}
    assert kid in by_id
    assert by_id[kid].algorithm == "EdDSA"
    public_key = Ed25519PublicKey.from_public_bytes(by_id[kid].public_key)
    claims = jwt.decode(
        member.access_token,
        public_key,
        algorithms=["EdDSA"],
        audience="cumulo",
        issuer="cumulo-auth",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == member.account_id

    only = (await rpc(internal.GetSigningKeys, auth_pb2.GetSigningKeysRequest(key_id=kid))).keys
    assert [k.key_id for k in only] == [kid]
    unknown = (await rpc(internal.GetSigningKeys, auth_pb2.GetSigningKeysRequest(key_id="k19990101-00000000"))).keys
    assert list(unknown) == []


# --- client apps ---------------------------------------------------------------------------------


async def test_get_client_app(internal):
    app = await rpc(internal.GetClientApp, auth_pb2.GetClientAppRequest(client_id="cumulo-cli"))
    assert (app.client_id, app.enabled) == ("cumulo-cli", True)
    assert app.name


async def test_unknown_client_app_is_not_found(internal):
    await expect_error(rpc(internal.GetClientApp, auth_pb2.GetClientAppRequest(client_id="nope")), grpc.StatusCode.NOT_FOUND)


async def test_registered_client_app_may_call(internal, auth):
    client_id = f"test-app-{uuid.uuid4().hex[:8]}"
    await rpc(internal.RegisterClientApp, auth_pb2.RegisterClientAppRequest(client_id=client_id, name="  Test App "))
    app = await rpc(internal.GetClientApp, auth_pb2.GetClientAppRequest(client_id=client_id))
    assert (app.name, app.enabled) == ("Test App", True)
    async with Cumulo(auth.target, transport=transport_for(auth.target), client_id=client_id) as client:
        assert (await client.call(client.auth.GetTerms, auth_pb2.GetTermsRequest(), authenticated=False)).version == TERMS


@pytest.mark.parametrize(
    ("client_id", "name", "field"),
    [("", "App", "client_id"), ("has space", "App", "client_id"), ("x" * 65, "App", "client_id"), ("ok-id", "  ", "name")],
    ids=["empty-id", "space-in-id", "id-too-long", "blank-name"],
)
async def test_bad_client_app_registration_is_invalid_argument(internal, client_id, name, field):
    await expect_error(
        rpc(internal.RegisterClientApp, auth_pb2.RegisterClientAppRequest(client_id=client_id, name=name)),
        INVALID,
        field=field,
    )


@pytest.mark.parametrize("client_id", ["nope", ""], ids=["unknown", "none"])
async def test_call_from_an_unregistered_client_app_is_refused(auth, client_id):
    async with Cumulo(auth.target, transport=transport_for(auth.target), client_id=client_id) as stranger:
        await expect_error(
            stranger.call(stranger.auth.GetTerms, auth_pb2.GetTermsRequest(), authenticated=False),
            DENIED,
            reason="CLIENT_NOT_AUTHORIZED",
        )


async def test_valid_token_from_an_unregistered_client_app_is_refused(direct, auth, accounts):
    member = await accounts.new_member(direct)
    async with Cumulo(auth.target, transport=transport_for(auth.target), client_id="nope") as stranger:
        await expect_error(
            call(stranger, stranger.auth.GetAccount, auth_pb2.GetAccountRequest(), member.access_token),
            DENIED,
            reason="CLIENT_NOT_AUTHORIZED",
        )


async def test_gateway_refuses_calls_without_a_client_id(gateway):
    err = await bare_rpc_error(gateway, auth_pb2_grpc.AuthServiceStub, "GetTerms", auth_pb2.GetTermsRequest())
    assert err.code() == DENIED


async def test_gateway_refuses_an_unregistered_client_id(gateway):
    async with Cumulo(gateway, client_id="nope") as stranger:
        await expect_error(
            stranger.call(stranger.auth.GetTerms, auth_pb2.GetTermsRequest(), authenticated=False),
            DENIED,
            reason="CLIENT_NOT_AUTHORIZED",
        )


@pytest.mark.parametrize("method", ["GetSigningKeys", "GetClientApp", "SetAccountStatus", "GetAccountContacts", "RegisterClientApp"])
async def test_internal_api_is_not_reachable_through_the_gateway(gateway, method):
    requests = {
        "GetSigningKeys": auth_pb2.GetSigningKeysRequest(),
        "GetClientApp": auth_pb2.GetClientAppRequest(client_id="cumulo-cli"),
        "SetAccountStatus": auth_pb2.SetAccountStatusRequest(account_id=str(uuid.uuid4()), status=TERMINATED, reason="x", actor="y"),
        "GetAccountContacts": auth_pb2.GetAccountContactsRequest(account_id=str(uuid.uuid4())),
        "RegisterClientApp": auth_pb2.RegisterClientAppRequest(client_id="evil", name="evil"),
    }
    metadata = [("x-cumulo-client-id", "cumulo-cli")]
    err = await bare_rpc_error(gateway, auth_pb2_grpc.AuthInternalServiceStub, method, requests[method], metadata=metadata)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
