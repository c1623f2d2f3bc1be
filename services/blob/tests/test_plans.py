"""Plans and purchases (R1.4, §7.2): purchases raise the quota, keep the price agreed, and a
changed price needs the user's consent before the next purchase."""

import datetime as dt
import uuid

import grpc
import pytest
import sqlalchemy as sa

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_blob.adapters.tables import plan_prices
from cumulo_devstack.testing import allowed_caller, eventually, expect_error, lifecycle_has_contact

GIB = 1024**3


@pytest.fixture
async def internal(blob):
    async with allowed_caller(blob.target, blob_pb2_grpc.BlobInternalServiceStub) as internal:
        yield internal


async def _plans(client):
    return {p.plan_id: p for p in (await client.call(client.files.stub.ListPlans, blob_pb2.ListPlansRequest())).plans}


async def test_purchase_raises_the_quota_once_per_payment(user, internal):
    client, _ = user
    account_id = client.store.tokens.account_id
    before = (await client.files.usage()).quota
    plan = (await _plans(client))["cumulo-50g"]
    request = blob_pb2.RecordPurchaseRequest(
        account_id=account_id, plan_id=plan.plan_id, price_version=plan.price_version, payment_reference=f"pay-{uuid.uuid4()}"
    )
    first = await internal.RecordPurchase(request)
    again = await internal.RecordPurchase(request)  # the payment system retried
    assert again.purchase.purchase_id == first.purchase.purchase_id
    assert (await client.files.usage()).quota == before + 50 * GIB
    mine = (await client.call(client.files.stub.ListPurchases, blob_pb2.ListPurchasesRequest())).purchases
    assert [p.purchase_id for p in mine] == [first.purchase.purchase_id]
    assert mine[0].price_minor_units == plan.price_minor_units


async def _buy(internal, account_id: str, plan_id: str, version: int):
    return (await internal.RecordPurchase(blob_pb2.RecordPurchaseRequest(
        account_id=account_id, plan_id=plan_id, price_version=version, payment_reference=f"p-{uuid.uuid4()}"))).purchase


async def _refused_price_changed(call) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert b"PRICE_CHANGED" in dict(caught.value.trailing_metadata())["grpc-status-details-bin"]


async def test_a_new_price_is_announced_and_renewals_keep_the_bought_price_until_it_is_accepted(user, people, internal, blob, lifecycle, mail):
    """§7.2: subscribers are told before a new price applies; their renewals stay at the price
    they bought at until they accept the new one (recorded); others pay the price that applies."""
    client, email = user
    await lifecycle_has_contact(lifecycle, email)
    account_id = client.store.tokens.account_id
    plan_id = f"test-{uuid.uuid4().hex[:8]}"
    v1 = (await internal.SetPlanPrice(blob_pb2.SetPlanPriceRequest(
        plan_id=plan_id, name="Test", bytes=GIB, price_minor_units=100, currency="CNY", period_days=30))).plan
    bought = await _buy(internal, account_id, plan_id, v1.price_version)
    # A subscriber is told before: not sooner than the notice period (a minute in the tests).
    soon = blob_pb2.SetPlanPriceRequest(plan_id=plan_id, name="Test", bytes=GIB, price_minor_units=250, currency="CNY", period_days=30)
    soon.applies_at.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await internal.SetPlanPrice(soon)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "applies_at" in caught.value.details()
    v2 = (await internal.SetPlanPrice(blob_pb2.SetPlanPriceRequest(
        plan_id=plan_id, name="Test", bytes=GIB, price_minor_units=250, currency="CNY", period_days=30))).plan
    assert v2.price_version == v1.price_version + 1
    listed = (await _plans(client))[plan_id]
    assert (listed.price_minor_units, listed.next.price_minor_units, listed.bought_price_version) == (100, 250, v1.price_version)

    async def told():
        return [m for m in mail.messages() if m["To"] == email and str(m["Subject"]).startswith("您的 cumulo 套餐 Test 将于")]  # the account's language (zh-CN)

    (notice,) = await eventually(told, what="the price notice")
    assert "2.50 CNY" in notice.get_content() and "1.00 CNY" in notice.get_content()

    # The new price applies (as if the month had passed).
    async with blob.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.update(plan_prices).where(plan_prices.c.plan_id == plan_id, plan_prices.c.version == v2.price_version)
            .values(applies_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
        await uow.commit()
    assert (await _plans(client))[plan_id].price_minor_units == 250
    stranger = await people.new()
    await _refused_price_changed(_buy(internal, stranger.account_id, plan_id, v1.price_version))
    renewed = await _buy(internal, account_id, plan_id, v1.price_version)  # the bought price, still
    assert renewed.price_minor_units == 100 and renewed.starts_at == bought.ends_at
    accepted = await client.files.accept_price(plan_id, v2.price_version)
    assert accepted.price_version == v2.price_version
    assert (await _plans(client))[plan_id].accepted_price_version == v2.price_version
    await _refused_price_changed(_buy(internal, account_id, plan_id, v1.price_version))
    assert (await _buy(internal, account_id, plan_id, v2.price_version)).price_minor_units == 250
    mine = (await client.call(client.files.stub.ListPurchases, blob_pb2.ListPurchasesRequest())).purchases
    assert [p.price_minor_units for p in mine] == [100, 100, 250]  # nothing bought before changed
    await expect_error(client.files.accept_price(plan_id, 99), grpc.StatusCode.NOT_FOUND, reason="PRICE_NOT_FOUND")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"account_id": "nope"}, "account_id"),
        ({"payment_reference": ""}, "payment_reference"),
        ({"price_version": 999}, "price_version"),
    ],
)
async def test_bad_purchase_requests_name_the_field(user, internal, change, field):
    client, _ = user
    plan = (await _plans(client))["cumulo-50g"]
    values = {"account_id": client.store.tokens.account_id, "plan_id": plan.plan_id, "price_version": plan.price_version,
              "payment_reference": f"p-{uuid.uuid4()}", **change}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await internal.RecordPurchase(blob_pb2.RecordPurchaseRequest(**values))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in caught.value.details()


async def test_unknown_plan_is_not_found(user, internal):
    client, _ = user
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await internal.RecordPurchase(blob_pb2.RecordPurchaseRequest(
            account_id=client.store.tokens.account_id, plan_id="no-such-plan", price_version=1, payment_reference="x-1"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
