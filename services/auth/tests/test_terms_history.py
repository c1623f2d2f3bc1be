"""The terms of service as a history: every version an account accepted, when, from which app,
and by which guardian for a minor; a sign-in says when a newer version awaits acceptance."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2
from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts as account_rows
from cumulo_auth.adapters.tables import terms_acceptances
from cumulo_devstack.testing import PASSWORD, call, unique_email

TERMS = "2026-11"


async def history(direct, token: str) -> list[tuple[str, str, str]]:
    found = await call(direct, direct.auth.ListTermsAcceptances, auth_pb2.ListTermsAcceptancesRequest(), token)
    return [(a.version, a.client_id, a.accepted_by) for a in found.acceptances]


async def test_signing_up_records_the_first_acceptance_and_accepting_again_keeps_it(direct, accounts):
    member = await accounts.new_member(direct)
    assert await history(direct, member.access_token) == [(TERMS, "cumulo-cli", "")]
    await call(direct, direct.auth.AcceptTerms, auth_pb2.AcceptTermsRequest(terms_version=TERMS), member.access_token)
    assert await history(direct, member.access_token) == [(TERMS, "cumulo-cli", "")]  # the first time counts


async def test_a_sign_in_asks_for_a_newer_version_and_the_history_keeps_both(direct, auth, accounts):
    member = await accounts.new_member(direct)
    account_id = uuid.UUID(member.account_id)
    # As if the account had accepted an older version only (before TERMS was published).
    async with auth.app.db.unit_of_work() as uow:
        old_at = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
        await uow.execute(sa.update(account_rows).where(account_rows.c.account_id == account_id).values(terms_version="2026-05", terms_accepted_at=old_at))
        await uow.execute(sa.delete(terms_acceptances).where(terms_acceptances.c.account_id == account_id))
        await account_table.record_terms(uow, account_id, "2026-05", now=old_at, client_id="cumulo-web")
        auth.app.live.forget_after_commit(uow, account_id)
        await uow.commit()
    signed_in = await call(direct, direct.auth.Login, auth_pb2.LoginRequest(login=member.email, password=PASSWORD))
    assert signed_in.accept_terms_version == TERMS
    token = signed_in.tokens.access_token
    await call(direct, direct.auth.AcceptTerms, auth_pb2.AcceptTermsRequest(terms_version=TERMS), token)
    assert await history(direct, token) == [(TERMS, "cumulo-cli", ""), ("2026-05", "cumulo-web", "")]
    again = await call(direct, direct.auth.Login, auth_pb2.LoginRequest(login=member.email, password=PASSWORD))
    assert again.accept_terms_version == ""


async def test_a_guardian_accepts_for_the_minor_and_it_is_said_so(direct, accounts, auth):
    guardian = await accounts.new_member(direct)
    born = auth.clock.now().date().replace(year=auth.clock.now().year - 10, day=1)
    email = unique_email()
    request = auth_pb2.CreateMinorAccountRequest(
        email=email, password="purple monkey dishwasher", guardian_consent=True,
        birth_date=auth_pb2.Date(year=born.year, month=born.month, day=born.day),
    )
    await call(direct, direct.auth.CreateMinorAccount, request, guardian.access_token)
    child = await call(direct, direct.auth.Login, auth_pb2.LoginRequest(login=email, password="purple monkey dishwasher"))
    assert await history(direct, child.tokens.access_token) == [(TERMS, "cumulo-cli", guardian.account_id)]
