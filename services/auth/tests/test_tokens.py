"""Access tokens at auth's own door: every method of its public API is behind the platform's
door (auth verifies with its own keys, by its own clock), and a real token only ever acts on
its owner's own data. Every kind of bad token is tried once, on the platform's interceptor
(libs/cumulo_platform/tests/test_call_door.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import grpc
import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo_auth.api.public import ANONYMOUS_METHODS
from cumulo_devstack.testing import PASSWORD, assert_gated, call, expect_error, gate_cases, public_services, unique_email
from cumulo_sdk.errors import CumuloRpcError

TERMS = "2026-11"
CHILD = auth_pb2.Date(year=2019, month=3, day=1)

TOKEN_METHODS = [
    "Logout",
    "GetAccount",
    "ListSessions",
    "RevokeSession",
    "CreateMinorAccount",
    "UpdateContacts",
    "AcceptTerms",
    "ChangePassword",
    "CancelAccount",
    "ListGuardians",
    "RevokeGuardian",
    "ConfirmPassword",
    "SendVerificationCode",
    "VerifyContact",
    "ListMinors",
    "SetMinorPassword",
    "BeginTwoStep",
    "ConfirmTwoStep",
    "DisableTwoStep",
    "ListTermsAcceptances",
]


def request_for(method: str, *, session_id: str = "") -> object:
    """A request each method would carry out if the caller were allowed."""
    if method == "RevokeSession":
        return auth_pb2.RevokeSessionRequest(session_id=session_id or str(uuid.uuid4()))
    if method == "CreateMinorAccount":
        return auth_pb2.CreateMinorAccountRequest(
            email=unique_email(), password="purple monkey dishwasher", birth_date=CHILD, guardian_consent=True
        )
    if method == "UpdateContacts":
        return auth_pb2.UpdateContactsRequest(email=unique_email(), update_mask=["email"])
    if method == "AcceptTerms":
        return auth_pb2.AcceptTermsRequest(terms_version=TERMS)
    if method == "ChangePassword":
        return auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password="a brand new passphrase")
    if method == "CancelAccount":
        return auth_pb2.CancelAccountRequest(password=PASSWORD)
    if method == "ConfirmPassword":
        return auth_pb2.ConfirmPasswordRequest(password=PASSWORD)
    if method == "RevokeGuardian":
        return auth_pb2.RevokeGuardianRequest(guardian_account_id=str(uuid.uuid4()))
    if method == "SendVerificationCode":
        return auth_pb2.SendVerificationCodeRequest(channel="phone")
    if method == "VerifyContact":
        return auth_pb2.VerifyContactRequest(channel="email", code="123456")
    if method in ("ConfirmTwoStep", "DisableTwoStep"):
        return getattr(auth_pb2, f"{method}Request")(code="123456")
    if method == "SetMinorPassword":
        return auth_pb2.SetMinorPasswordRequest(minor_account_id=str(uuid.uuid4()), new_password="a new passphrase for the child")
    return getattr(auth_pb2, f"{method}Request")()


@pytest.fixture(scope="module")
async def holder(module_client, accounts):
    """A logged-in member whose tokens the forgeries imitate; nothing may happen to them."""
    return await accounts.new_member(module_client)


# --- the door ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, case", gate_cases(public_services(auth_pb2), ANONYMOUS_METHODS))
async def test_every_method_is_gated(auth, signing_key, method, case):
    await assert_gated(auth.target, method, case, signing_key)


async def test_auth_judges_expiry_by_its_own_clock(direct, holder, clock):
    """Auth verifies tokens itself, with the clock it issues them by."""
    me = await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), holder.access_token)
    assert me.account.account_id == holder.account_id
    clock.advance(dt.timedelta(minutes=16))
    await expect_error(
        call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), holder.access_token),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="TOKEN_EXPIRED",
    )


async def test_holder_is_untouched_by_all_the_calls_aimed_at_it(direct, holder):
    me = await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), holder.access_token)
    assert me.account.status == auth_pb2.ACCOUNT_STATUS_ACTIVE
    assert me.account.email == holder.email
    sessions = await call(direct, direct.auth.ListSessions, auth_pb2.ListSessionsRequest(), holder.access_token)
    assert holder.session_id in [s.session_id for s in sessions.sessions]


# --- another user's token acts only on its owner ---------------------------------------------


@pytest.fixture(scope="module")
async def victim(module_client, accounts):
    return await accounts.new_member(module_client)


async def assert_victim_untouched(client, victim) -> None:
    me = await call(client, client.auth.GetAccount, auth_pb2.GetAccountRequest(), victim.access_token)
    assert me.account.account_id == victim.account_id
    assert me.account.email == victim.email
    assert me.account.status == auth_pb2.ACCOUNT_STATUS_ACTIVE
    sessions = await call(client, client.auth.ListSessions, auth_pb2.ListSessionsRequest(), victim.access_token)
    assert victim.session_id in [s.session_id for s in sessions.sessions]


async def as_intruder_logout(client, intruder, victim):
    await call(client, client.auth.Logout, auth_pb2.LogoutRequest(), intruder.access_token)
    await expect_error(
        call(client, client.auth.GetAccount, auth_pb2.GetAccountRequest(), intruder.access_token),
        grpc.StatusCode.UNAUTHENTICATED,
        reason="SESSION_REVOKED",
    )


async def as_intruder_get_account(client, intruder, victim):
    me = await call(client, client.auth.GetAccount, auth_pb2.GetAccountRequest(), intruder.access_token)
    assert me.account.account_id == intruder.account_id
    assert me.account.email == intruder.email


async def as_intruder_list_sessions(client, intruder, victim):
    listed = await call(client, client.auth.ListSessions, auth_pb2.ListSessionsRequest(), intruder.access_token)
    assert [s.session_id for s in listed.sessions] == [intruder.session_id]


async def as_intruder_revoke_session(client, intruder, victim):
    await expect_error(
        call(client, client.auth.RevokeSession, auth_pb2.RevokeSessionRequest(session_id=victim.session_id), intruder.access_token),
        grpc.StatusCode.NOT_FOUND,
        reason="SESSION_NOT_FOUND",
    )
    # The victim's refresh token still works too (the session is alive).
    refreshed = await call(client, client.auth.Refresh, auth_pb2.RefreshRequest(refresh_token=victim.refresh_token))
    victim.refresh_token = refreshed.tokens.refresh_token
    victim.access_token = refreshed.tokens.access_token


async def as_intruder_create_minor_account(client, intruder, victim):
    created = await call(client, client.auth.CreateMinorAccount, request_for("CreateMinorAccount"), intruder.access_token)
    assert created.account.guardian_account_id == intruder.account_id


async def as_intruder_update_contacts(client, intruder, victim):
    request = request_for("UpdateContacts")
    updated = await call(client, client.auth.UpdateContacts, request, intruder.access_token)
    assert updated.account.account_id == intruder.account_id
    assert updated.account.email == request.email


async def as_intruder_accept_terms(client, intruder, victim):
    accepted = await call(client, client.auth.AcceptTerms, request_for("AcceptTerms"), intruder.access_token)
    assert accepted.account.account_id == intruder.account_id


async def as_intruder_change_password(client, intruder, victim):
    await call(client, client.auth.ChangePassword, request_for("ChangePassword"), intruder.access_token)
    # The victim's password is unchanged.
    again = await call(client, client.auth.Login, auth_pb2.LoginRequest(login=victim.email, password=PASSWORD))
    assert again.account.account_id == victim.account_id


async def as_intruder_cancel_account(client, intruder, victim):
    await call(client, client.auth.CancelAccount, request_for("CancelAccount"), intruder.access_token)
    # The intruder's own account is cancelled (and soon deleted by the lifecycle), not the victim's.
    with pytest.raises(CumuloRpcError) as refused:
        await call(client, client.auth.Login, auth_pb2.LoginRequest(login=intruder.email, password=PASSWORD))
    assert refused.value.reason in ("ACCOUNT_CANCELLED", "ACCOUNT_DELETED"), refused.value


async def as_intruder_list_guardians(client, intruder, victim):
    """The list is the caller's own account's: the intruder's is empty, whatever the victim's."""
    listed = await call(client, client.auth.ListGuardians, auth_pb2.ListGuardiansRequest(), intruder.access_token)
    assert list(listed.guardians) == []


async def as_intruder_revoke_guardian(client, intruder, victim):
    """Naming the victim as a guardian revokes nothing: it acts on the intruder's own account."""
    await expect_error(
        call(client, client.auth.RevokeGuardian, auth_pb2.RevokeGuardianRequest(guardian_account_id=victim.account_id), intruder.access_token),
        grpc.StatusCode.NOT_FOUND,
        reason="GUARDIAN_NOT_FOUND",
    )


async def as_intruder_confirm_password(client, intruder, victim):
    """Confirming a password (the same one as the victim's, here) vouches for the caller's own
    session: the token it gives is the intruder's."""
    answer = await call(client, client.auth.ConfirmPassword, request_for("ConfirmPassword"), intruder.access_token)
    payload = answer.access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert (claims["sub"], claims["sid"]) == (intruder.account_id, intruder.session_id)


async def as_intruder_send_verification_code(client, intruder, victim):
    """A code goes to the caller's own contact: the intruder has no phone number, whatever the victim has."""
    await expect_error(
        call(client, client.auth.SendVerificationCode, request_for("SendVerificationCode"), intruder.access_token),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="NO_SUCH_CONTACT",
    )


async def as_intruder_verify_contact(client, intruder, victim):
    """A code is checked against the caller's own contact: none waits for the intruder's."""
    await expect_error(
        call(client, client.auth.VerifyContact, request_for("VerifyContact"), intruder.access_token),
        grpc.StatusCode.FAILED_PRECONDITION,
        reason="NO_CODE_WAITING",
    )


async def as_intruder_list_minors(client, intruder, victim):
    """The list is the caller's own minors: none, whoever else has some."""
    listed = await call(client, client.auth.ListMinors, auth_pb2.ListMinorsRequest(), intruder.access_token)
    assert list(listed.minors) == []


async def as_intruder_set_minor_password(client, intruder, victim):
    """Naming the victim (an adult in nobody's care, and not the intruder's) sets nothing."""
    request = auth_pb2.SetMinorPasswordRequest(minor_account_id=victim.account_id, new_password="a new passphrase for the child")
    await expect_error(
        call(client, client.auth.SetMinorPassword, request, intruder.access_token), grpc.StatusCode.NOT_FOUND, reason="MINOR_NOT_FOUND"
    )
    again = await call(client, client.auth.Login, auth_pb2.LoginRequest(login=victim.email, password=PASSWORD))
    assert again.account.account_id == victim.account_id


async def as_intruder_begin_two_step(client, intruder, victim):
    """The secret is the caller's own, named after the caller's login."""
    begun = await call(client, client.auth.BeginTwoStep, auth_pb2.BeginTwoStepRequest(), intruder.access_token)
    assert intruder.email.replace("@", "%40") in begun.otpauth_uri and victim.email.replace("@", "%40") not in begun.otpauth_uri


async def as_intruder_confirm_two_step(client, intruder, victim):
    """A code is checked against the caller's own pending secret: the intruder has none."""
    await expect_error(
        call(client, client.auth.ConfirmTwoStep, request_for("ConfirmTwoStep"), intruder.access_token),
        grpc.StatusCode.FAILED_PRECONDITION, reason="TWO_STEP_NOT_BEGUN",
    )


async def as_intruder_disable_two_step(client, intruder, victim):
    """Off for the caller's own account (off already: nothing to do), whatever the victim has."""
    await call(client, client.auth.DisableTwoStep, request_for("DisableTwoStep"), intruder.access_token)


async def as_intruder_list_terms_acceptances(client, intruder, victim):
    """The history is the caller's own."""
    listed = await call(client, client.auth.ListTermsAcceptances, auth_pb2.ListTermsAcceptancesRequest(), intruder.access_token)
    assert len(listed.acceptances) == 1 and listed.acceptances[0].accepted_by == ""


INTRUSIONS = {
    "Logout": as_intruder_logout,
    "GetAccount": as_intruder_get_account,
    "ListSessions": as_intruder_list_sessions,
    "RevokeSession": as_intruder_revoke_session,
    "CreateMinorAccount": as_intruder_create_minor_account,
    "UpdateContacts": as_intruder_update_contacts,
    "AcceptTerms": as_intruder_accept_terms,
    "ChangePassword": as_intruder_change_password,
    "CancelAccount": as_intruder_cancel_account,
    "ListGuardians": as_intruder_list_guardians,
    "RevokeGuardian": as_intruder_revoke_guardian,
    "ConfirmPassword": as_intruder_confirm_password,
    "SendVerificationCode": as_intruder_send_verification_code,
    "VerifyContact": as_intruder_verify_contact,
    "ListMinors": as_intruder_list_minors,
    "SetMinorPassword": as_intruder_set_minor_password,
    "BeginTwoStep": as_intruder_begin_two_step,
    "ConfirmTwoStep": as_intruder_confirm_two_step,
    "DisableTwoStep": as_intruder_disable_two_step,
    "ListTermsAcceptances": as_intruder_list_terms_acceptances,
}


def test_every_token_method_has_an_ownership_scenario():
    """Every public method that takes a token, from the proto: one added is not forgotten."""
    from_proto = {m.name for service in public_services(auth_pb2) for m in service.methods if f"/{service.full_name}/{m.name}" not in ANONYMOUS_METHODS}
    assert sorted(INTRUSIONS) == sorted(TOKEN_METHODS) == sorted(from_proto)


@pytest.mark.parametrize("method", TOKEN_METHODS)
async def test_another_users_token_acts_only_on_its_owner(direct, victim, method, accounts):
    intruder = await accounts.new_member(direct)
    await INTRUSIONS[method](direct, intruder, victim)
    await assert_victim_untouched(direct, victim)


# --- time is the service's clock --------------------------------------------------------------


async def test_token_issued_after_moving_the_clock_forward_is_accepted(direct, holder, clock, accounts):
    """The verifier judges expiry by the injected clock; a token issued by that same clock an
    hour from now must verify (PyJWT must not judge its `iat` by the wall clock)."""
    clock.advance(dt.timedelta(hours=1))
    later = await accounts.login(direct, holder.email)
    me = await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), later.access_token)
    assert me.account.account_id == holder.account_id
