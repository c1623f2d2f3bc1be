"""A plan's new price on the console's account page: announced with its date; a subscriber
accepts it with a click (recorded: their renewals are at it from then on)."""

from __future__ import annotations

import uuid

from playwright.async_api import Page, expect

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_devstack.testing import allowed_caller
from cumulo_devstack.testing.accounts import Person

from .conftest import sign_in


async def test_a_subscriber_sees_a_new_price_and_accepts_it(page: Page, person: Person, blob):
    plan_id = f"web-{uuid.uuid4().hex[:8]}"
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as internal:
        price = blob_pb2.SetPlanPriceRequest(plan_id=plan_id, name=f"Plan {plan_id}", bytes=1 << 30, price_minor_units=600, currency="CNY",
                                             period_days=30)
        v1 = (await internal.SetPlanPrice(price)).plan
        await internal.RecordPurchase(blob_pb2.RecordPurchaseRequest(
            account_id=person.account_id, plan_id=plan_id, price_version=v1.price_version, payment_reference=f"p-{uuid.uuid4()}"))
        price.price_minor_units = 900
        v2 = (await internal.SetPlanPrice(price)).plan

    await sign_in(page, person, "/account")
    announced = page.locator(f"[data-plan='{plan_id}']")
    await expect(announced).to_contain_text("New price from")
    await expect(announced).to_contain_text("Your renewals stay at the price you bought at")
    await announced.get_by_role("button", name="Accept the new price").click()
    await expect(announced).to_contain_text("You accepted it")
    plans = {p.plan_id: p for p in await person.client.files.plans()}
    assert plans[plan_id].accepted_price_version == v2.price_version
