"""A frozen account (12 months unused) comes back when its owner uses it: logging in or
refreshing a session asks the lifecycle to reactivate it first."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from cumulo.lifecycle.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from cumulo_devstack.testing import Ages, allowed_caller, eventually, rpc
from cumulo_platform.account_states import FROZEN
from cumulo_sdk.errors import CumuloRpcError


@pytest.fixture
async def frozen(direct, auth, blob, lifecycle, infra, accounts) -> Any:
    """A logged-in member whose account the lifecycle has frozen, and auth knows it."""
    member = await accounts.new_member(direct)
    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as internal:

        async def known() -> bool:
            try:
                await rpc(internal.GetAccount, lifecycle_pb2.GetAccountRequest(account_id=member.account_id))
            except CumuloRpcError as exc:
                if exc.code == grpc.StatusCode.NOT_FOUND:
                    return False
                raise
            return True

        await eventually(known, what="the lifecycle to know the account")
        await Ages(lifecycle, (auth, blob), infra.nats.url).freeze(member.account_id)

        async def auth_knows() -> bool:
            return auth.app.states.state_of(member.account_id) == FROZEN

        await eventually(auth_knows, what="auth to learn the freeze")
        yield member, internal


async def state_in_the_lifecycle(internal, account_id: str) -> int:
    found = await rpc(internal.GetAccount, lifecycle_pb2.GetAccountRequest(account_id=account_id))
    return found.account.state


async def test_refreshing_a_frozen_account_reactivates_it(direct, frozen, accounts):
    member, internal = frozen
    refreshed = await accounts.refresh(direct, member.refresh_token)
    assert refreshed.tokens.session_id == member.session_id
    assert await state_in_the_lifecycle(internal, member.account_id) == lifecycle_pb2.ACCOUNT_STATE_ACTIVE


async def test_logging_in_to_a_frozen_account_reactivates_it(direct, frozen, accounts):
    member, internal = frozen
    assert (await accounts.login(direct, member.email)).account_id == member.account_id
    assert await state_in_the_lifecycle(internal, member.account_id) == lifecycle_pb2.ACCOUNT_STATE_ACTIVE
