"""The caller's own account: GetAccount, UpdateContacts, AcceptTerms, ChangePassword and
CancelAccount."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2
from cumulo_auth.adapters.tables import accounts as accounts_table
from cumulo_auth.adapters.tables import sessions as sessions_table
from cumulo_devstack.testing import PASSWORD, call, eventually, expect_error, unique_email, unique_phone
from cumulo_platform.tokens import Principal
from cumulo_sdk.errors import CumuloRpcError

NEW_PASSWORD = "a completely new passphrase"
TERMS = "2026-11"
ADULT = auth_pb2.Date(year=1990, month=5, day=17)
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def account_of(client, member) -> auth_pb2.Account:
    return (await call(client, client.auth.GetAccount, auth_pb2.GetAccountRequest(), member.access_token)).account


def update_contacts(client, member, mask, *, email="", phone=""):
    request = auth_pb2.UpdateContactsRequest(email=email, phone=phone, update_mask=mask)
    return call(client, client.auth.UpdateContacts, request, member.access_token)


def change_password(client, member, current, new):
    request = auth_pb2.ChangePasswordRequest(current_password=current, new_password=new)
    return call(client, client.auth.ChangePassword, request, member.access_token)


def cancel(client, member, password=PASSWORD):
    return call(client, client.auth.CancelAccount, auth_pb2.CancelAccountRequest(password=password), member.access_token)


@pytest.fixture(scope="module")
async def steady(module_client, accounts):
    """A member with e-mail and phone that only ever receives refused requests."""
    return await accounts.new_member(module_client, with_phone=True)


async def assert_unchanged(client, member) -> None:
    account = await account_of(client, member)
    assert (account.email, account.phone) == (member.email, member.phone)
    assert account.accepted_terms_version == TERMS
    assert account.status == auth_pb2.ACCOUNT_STATUS_ACTIVE


# --- GetAccount ------------------------------------------------------------------------------


async def test_get_account_returns_the_callers_account_and_the_current_terms(direct, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    response = await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), member.access_token)
    assert response.account.account_id == member.account_id
    assert response.account.email == member.email
    assert response.account.phone == member.phone
    assert response.current_terms_version == TERMS


# --- UpdateContacts --------------------------------------------------------------------------


async def test_change_email_moves_the_login_to_the_new_address(direct, accounts):
    member = await accounts.new_member(direct)
    new = unique_email()
    updated = (await update_contacts(direct, member, ["email"], email=new.upper())).account
    assert updated.email == new
    assert (await account_of(direct, member)).email == new
    assert (await accounts.login(direct, new)).account_id == member.account_id
    await expect_error(accounts.login_call(direct, member.email), UNAUTHENTICATED, reason="INVALID_CREDENTIALS")


async def test_remove_phone_keeps_the_email(direct, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    updated = (await update_contacts(direct, member, ["phone"])).account
    assert updated.phone == ""
    assert updated.email == member.email


async def test_add_a_phone_and_log_in_with_it(direct, accounts):
    member = await accounts.new_member(direct)
    phone = unique_phone()
    updated = (await update_contacts(direct, member, ["phone"], phone=f"{phone[:3]} {phone[3:]}")).account
    assert (updated.email, updated.phone) == (member.email, phone)
    assert (await accounts.login(direct, phone)).account_id == member.account_id


async def test_remove_email_keeps_the_phone(direct, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    updated = (await update_contacts(direct, member, ["email"])).account
    assert (updated.email, updated.phone) == ("", member.phone)


async def test_removing_the_last_contact_is_refused(direct, accounts):
    member = await accounts.new_member(direct)
    await expect_error(update_contacts(direct, member, ["email"]), grpc.StatusCode.FAILED_PRECONDITION, reason="CONTACT_REQUIRED")
    assert (await account_of(direct, member)).email == member.email


async def test_removing_both_contacts_at_once_is_refused(direct, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    await expect_error(
        update_contacts(direct, member, ["email", "phone"]), grpc.StatusCode.FAILED_PRECONDITION, reason="CONTACT_REQUIRED"
    )
    account = await account_of(direct, member)
    assert (account.email, account.phone) == (member.email, member.phone)


async def test_taking_another_accounts_email_or_phone_is_refused(direct, accounts):
    owner = await accounts.new_member(direct, with_phone=True)
    member = await accounts.new_member(direct, with_phone=True)
    await expect_error(update_contacts(direct, member, ["email"], email=owner.email), grpc.StatusCode.ALREADY_EXISTS, field="email")
    await expect_error(update_contacts(direct, member, ["phone"], phone=owner.phone), grpc.StatusCode.ALREADY_EXISTS, field="phone")
    # Both at once: nothing at all changes.
    await expect_error(
        update_contacts(direct, member, ["email", "phone"], email=unique_email(), phone=owner.phone),
        grpc.StatusCode.ALREADY_EXISTS,
        field="phone",
    )
    account = await account_of(direct, member)
    assert (account.email, account.phone) == (member.email, member.phone)
    owner_account = await account_of(direct, owner)
    assert (owner_account.email, owner_account.phone) == (owner.email, owner.phone)


async def test_setting_the_same_email_again_is_harmless(direct, accounts):
    member = await accounts.new_member(direct)
    updated = (await update_contacts(direct, member, ["email"], email=member.email.upper())).account
    assert updated.email == member.email


async def test_fields_outside_the_mask_are_left_alone(direct, accounts):
    member = await accounts.new_member(direct, with_phone=True)
    updated = (await update_contacts(direct, member, ["phone"], email=unique_email(), phone=unique_phone())).account
    assert updated.email == member.email
    assert updated.phone != member.phone


@pytest.mark.parametrize("mask", [[], ["password"], ["email", "status"], ["Email"], ["*"]], ids=str)
async def test_bad_update_mask_is_invalid_argument(direct, steady, mask):
    await expect_error(update_contacts(direct, steady, mask, email=unique_email()), INVALID, field="update_mask")
    await assert_unchanged(direct, steady)


@pytest.mark.parametrize(
    ("mask", "email", "phone", "field"),
    [
        (["email"], "not-an-address", "", "email"),
        (["email"], "a@b", "", "email"),
        (["phone"], "", "13800138000", "phone"),
        (["phone"], "", "+86 phone", "phone"),
        (["email", "phone"], "fine@example.com", "12", "phone"),
    ],
    ids=["email-word", "email-no-dot", "phone-no-plus", "phone-letters", "good-email-bad-phone"],
)
async def test_malformed_new_contacts_are_refused_naming_the_field(direct, steady, mask, email, phone, field):
    await expect_error(update_contacts(direct, steady, mask, email=email, phone=phone), INVALID, field=field)
    await assert_unchanged(direct, steady)


# --- AcceptTerms -----------------------------------------------------------------------------


async def test_accept_current_terms(direct, accounts):
    member = await accounts.new_member(direct)
    account = (await call(direct, direct.auth.AcceptTerms, auth_pb2.AcceptTermsRequest(terms_version=TERMS), member.access_token)).account
    assert account.account_id == member.account_id
    assert account.accepted_terms_version == TERMS


@pytest.mark.parametrize("version", ["", "2025-01", "2099-12"])
async def test_accepting_other_terms_is_invalid_argument(direct, steady, version):
    await expect_error(
        call(direct, direct.auth.AcceptTerms, auth_pb2.AcceptTermsRequest(terms_version=version), steady.access_token),
        INVALID,
        field="terms_version",
    )
    await assert_unchanged(direct, steady)


# --- ChangePassword --------------------------------------------------------------------------


async def test_change_password_signs_out_other_sessions_and_keeps_this_one(direct, accounts):
    here = await accounts.new_member(direct)
    elsewhere = await accounts.login(direct, here.email)
    await change_password(direct, here, PASSWORD, NEW_PASSWORD)

    await expect_error(accounts.login_call(direct, here.email, PASSWORD), UNAUTHENTICATED, reason="INVALID_CREDENTIALS")
    assert (await accounts.login(direct, here.email, NEW_PASSWORD)).account_id == here.account_id

    await expect_error(account_of(direct, elsewhere), UNAUTHENTICATED, reason="SESSION_REVOKED")
    await expect_error(accounts.refresh(direct, elsewhere.refresh_token), UNAUTHENTICATED, reason="SESSION_REVOKED")
    assert (await account_of(direct, here)).account_id == here.account_id
    assert (await accounts.refresh(direct, here.refresh_token)).tokens.session_id == here.session_id


async def test_change_password_with_a_wrong_current_password_is_refused(direct, accounts):
    here = await accounts.new_member(direct)
    elsewhere = await accounts.login(direct, here.email)
    await expect_error(
        change_password(direct, here, "not my password", NEW_PASSWORD), grpc.StatusCode.PERMISSION_DENIED, reason="INVALID_CREDENTIALS"
    )
    assert (await account_of(direct, elsewhere)).account_id == here.account_id
    assert (await accounts.login(direct, here.email, PASSWORD)).account_id == here.account_id


@pytest.mark.parametrize(
    ("new", "reason"),
    [("short", None), ("x" * 129, None), ("password123", "PASSWORD_TOO_COMMON"), ("", None)],
    ids=["too-short", "too-long", "common", "empty"],
)
async def test_change_to_a_bad_password_is_refused_naming_new_password(direct, steady, new, reason):
    await expect_error(change_password(direct, steady, PASSWORD, new), INVALID, reason=reason, field="new_password")
    # nothing changed: the session is alive and the password is still the old one (checked last)
    await assert_unchanged(direct, steady)


async def test_new_password_equal_to_the_email_is_refused(direct, steady):
    await expect_error(change_password(direct, steady, PASSWORD, steady.email), INVALID, field="new_password")
    await expect_error(change_password(direct, steady, PASSWORD, steady.phone), INVALID, field="new_password")


async def test_steady_member_still_logs_in_with_the_original_password(direct, steady, accounts):
    assert (await accounts.login(direct, steady.email, PASSWORD)).account_id == steady.account_id


# --- CancelAccount ---------------------------------------------------------------------------
# A cancelled account is deleted by the lifecycle's saga soon after (services/lifecycle/tests);
# these tests hold that deletion (`hold_deletion`), to see the cancelled account until then.


async def test_cancel_account_with_a_wrong_password_is_refused(direct, accounts):
    member = await accounts.new_member(direct)
    await expect_error(cancel(direct, member, "not my password"), grpc.StatusCode.PERMISSION_DENIED, reason="INVALID_CREDENTIALS")
    assert (await account_of(direct, member)).status == auth_pb2.ACCOUNT_STATUS_ACTIVE


async def test_cancelled_account_cannot_log_in_and_its_sessions_end(direct, accounts, hold_deletion):
    member = await accounts.new_member(direct)
    await hold_deletion(member.account_id)
    other = await accounts.login(direct, member.email)
    await cancel(direct, member)
    await expect_error(accounts.login_call(direct, member.email), grpc.StatusCode.PERMISSION_DENIED, reason="ACCOUNT_CANCELLED")
    for session in (member, other):
        await expect_error(account_of(direct, session), UNAUTHENTICATED, reason="SESSION_REVOKED")
        await expect_error(accounts.refresh(direct, session.refresh_token), UNAUTHENTICATED, reason="SESSION_REVOKED")


async def test_cancelled_account_keeps_its_email_taken(direct, accounts, hold_deletion):
    member = await accounts.new_member(direct)
    await hold_deletion(member.account_id)
    await cancel(direct, member)
    request = auth_pb2.RegisterRequest(email=member.email, password=PASSWORD, birth_date=ADULT, accepted_terms_version=TERMS)
    await expect_error(call(direct, direct.auth.Register, request), grpc.StatusCode.ALREADY_EXISTS, field="email")


async def test_an_account_terminated_on_another_replica_cannot_be_cancelled_with_its_old_session(direct, accounts, hold_deletion, auth):
    """CancelAccount passes the platform's revocations (a retry comes with the session it ended
    itself), so it reads the session and account first-hand: a termination another replica
    made a moment ago (not yet forgotten by this replica's memory, nor announced) holds."""
    member = await accounts.new_member(direct)
    await hold_deletion(member.account_id)
    await call(direct, direct.auth.GetAccount, auth_pb2.GetAccountRequest(), member.access_token)  # cached here
    account_id = uuid.UUID(member.account_id)
    async with auth.app.db.unit_of_work() as uow:  # as another replica of auth terminates it
        await uow.execute(sa.update(accounts_table).where(accounts_table.c.account_id == account_id).values(status="terminated", updated_at=sa.func.now()))
        await uow.execute(
            sa.update(sessions_table).where(sessions_table.c.account_id == account_id).values(revoked_at=sa.func.now(), revoke_reason="terminated")
        )
        await uow.commit()
    await expect_error(cancel(direct, member), grpc.StatusCode.UNAUTHENTICATED, reason="SESSION_REVOKED")
    async with auth.app.db.read() as conn:
        status = (await conn.execute(sa.select(accounts_table.c.status).where(accounts_table.c.account_id == account_id))).scalar_one()
    assert status == "terminated"


async def test_cancel_account_is_idempotent_when_retried(direct, accounts, hold_deletion, auth):
    """A client whose first CancelAccount reply was lost retries it: the retry must succeed
    (the account is cancelled, as asked), not look like an expired login — whether it comes
    before or after the platform's revocations have learnt that the cancellation ended its
    session."""
    member = await accounts.new_member(direct)
    await hold_deletion(member.account_id)
    await cancel(direct, member)
    await cancel(direct, member)
    principal = Principal(member.account_id, member.session_id, "cumulo-cli", False, (), expires_at=0, issued_at=1.0)

    async def session_revoked_everywhere() -> bool:
        return auth.app.revocations.revoked(principal) is not None

    await eventually(session_revoked_everywhere, what="the cancellation's revocation to reach auth's own gate")
    await cancel(direct, member)
    await expect_error(accounts.login_call(direct, member.email), grpc.StatusCode.PERMISSION_DENIED, reason="ACCOUNT_CANCELLED")


async def test_concurrent_claims_of_one_new_email_have_one_winner_and_no_crash(direct, accounts):
    members = [await accounts.new_member(direct) for _ in range(4)]
    wanted = unique_email()
    results = await asyncio.gather(
        *(update_contacts(direct, m, ["email"], email=wanted) for m in members), return_exceptions=True
    )
    won = [r for r in results if isinstance(r, auth_pb2.UpdateContactsResponse)]
    lost = [r for r in results if isinstance(r, CumuloRpcError)]
    assert len(won) == 1, results
    assert [e.code for e in lost] == [grpc.StatusCode.ALREADY_EXISTS] * 3, lost
