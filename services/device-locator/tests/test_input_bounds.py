"""Bounded input to the locator: a device's id (its name until it has one), name, model and
platform follow the rule of names (nothing invisible, nothing that turns the text around);
a history page token no page gave out is INVALID_ARGUMENT naming it, whatever its size or make."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

import grpc
import pytest

from cumulo.locator.v1 import locator_pb2 as pb
from cumulo_devstack.testing import expect_error
from cumulo_platform.paging import encode_token

from .conftest import point

INVALID = grpc.StatusCode.INVALID_ARGUMENT
INVISIBLE = {"right-to-left-override": "Ann\u2019s phone\u202e", "zero-width-space": "Ann\u200bs phone", "byte-order-mark": "\ufeffphone"}


@pytest.mark.parametrize("text", INVISIBLE.values(), ids=INVISIBLE.keys())
@pytest.mark.parametrize("field", ["device_id", "name", "model", "platform"])
async def test_a_device_is_not_registered_under_a_name_that_does_not_show(owner, field, text):
    values = {"device_id": f"tablet-{uuid.uuid4().hex[:6]}", "name": "tablet", "model": "Tab", "platform": "android", field: text}
    err = await expect_error(owner.agent.register(values.pop("device_id"), **values), INVALID, reason="INVISIBLE_CHARACTER", field=field)
    assert text not in err.message
    assert [d.device_id for d in await owner.client.devices.list()] == [owner.device_id]


async def test_a_device_name_in_a_script_that_needs_its_joiners_is_registered(owner):
    name = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f469\u200d\U0001f4bb"
    assert (await owner.agent.register(owner.device_id, name=name)).name == name


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def crafted(values: Any) -> str:
    return b64(json.dumps(values).encode())


BAD_TOKENS = {
    "one-megabyte": "A" * (1024 * 1024),
    "garbage": "not a token, just words!",
    "nested-a-thousand-deep": b64(b"[" * 3000 + b"]" * 3000),
    "a-time-without-offset": encode_token(["2026-01-01T00:00:00"]),
    "year-one-east-of-utc": encode_token(["0001-01-01T00:00:00+14:00"]),
    "lone-surrogate": crafted(["\ud800"]),
    "a-sync-change-token": encode_token([1, str(uuid.uuid4()), 3]),
    "a-backup-entries-token": encode_token(["photos/a.jpg"]),
}


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_a_history_page_token_no_page_gave_is_invalid_argument(owner, token):
    request = pb.GetHistoryRequest(device_id=owner.device_id, page_token=token)
    await expect_error(owner.client.call(owner.client.devices.stub.GetHistory, request), INVALID, field="page_token")


async def test_history_pages_with_its_own_tokens(owner):
    """The control: the tokens the history gives out go on from where a page ended."""
    await owner.agent.report(owner.device_id, [point(ago=dt.timedelta(minutes=n)) for n in (3, 2, 1)])
    request = pb.GetHistoryRequest(device_id=owner.device_id, page_size=2)
    first = await owner.client.call(owner.client.devices.stub.GetHistory, request)
    assert len(first.locations) == 2 and first.next_page_token
    request.page_token = first.next_page_token
    second = await owner.client.call(owner.client.devices.stub.GetHistory, request)
    assert len(second.locations) == 1 and not second.next_page_token

