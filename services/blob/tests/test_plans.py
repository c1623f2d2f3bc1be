"""Plans and purchases (R1.4, §7.2): purchases raise the quota, keep the price agreed, and a
changed price needs the user's consent before the next purchase."""

import uuid

import grpc
import pytest

from cumulo.blob.v1 import blob_pb2, blob_pb2_grpc
from cumulo_devstack.testing import allowed_caller

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


async def test_a_new_price_needs_consent_and_never_touches_earlier_purchases(user, internal):
    client, _ = user
    account_id = client.store.tokens.account_id
    plan_id = f"test-{uuid.uuid4().hex[:8]}"
    v1 = (await internal.SetPlanPrice(blob_pb2.SetPlanPriceRequest(
        plan_id=plan_id, name="Test", bytes=GIB, price_minor_units=100, currency="CNY", period_days=30))).plan
    bought = (await internal.RecordPurchase(blob_pb2.RecordPurchaseRequest(
        account_id=account_id, plan_id=plan_id, price_version=v1.price_version, payment_reference=f"p-{uuid.uuid4()}"))).purchase
    v2 = (await internal.SetPlanPrice(blob_pb2.SetPlanPriceRequest(
        plan_id=plan_id, name="Test", bytes=GIB, price_minor_units=250, currency="CNY", period_days=30))).plan
    assert v2.price_version == v1.price_version + 1
    assert (await _plans(client))[plan_id].price_minor_units == 250
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await internal.RecordPurchase(blob_pb2.RecordPurchaseRequest(
            account_id=account_id, plan_id=plan_id, price_version=v1.price_version, payment_reference=f"p-{uuid.uuid4()}"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert b"PRICE_CHANGED" in dict(caught.value.trailing_metadata())["grpc-status-details-bin"]
    mine = (await client.call(client.files.stub.ListPurchases, blob_pb2.ListPurchasesRequest())).purchases
    assert [(p.purchase_id, p.price_minor_units) for p in mine] == [(bought.purchase_id, 100)]
    renewed = (await internal.RecordPurchase(blob_pb2.RecordPurchaseRequest(
        account_id=account_id, plan_id=plan_id, price_version=v2.price_version, payment_reference=f"p-{uuid.uuid4()}"))).purchase
    assert renewed.price_minor_units == 250
    assert renewed.starts_at == bought.ends_at  # a renewal extends, it does not overlap


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
