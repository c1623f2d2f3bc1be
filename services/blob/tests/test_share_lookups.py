"""ShareWithUser tells whether a contact has an account (the product must say "no such user"),
so each account may look up only so many recipients an hour: going through a list of addresses
stops there, found or not, while other accounts share as before."""

import uuid

import grpc

from cumulo.blob.v1 import blob_pb2
from cumulo_devstack.testing import expect_error


async def test_an_account_going_through_addresses_is_stopped_and_others_still_share(alice, bob, owners, blob):
    allowance = blob.app.settings.recipients_per_hour
    node = await alice.put("list.txt", b"who is there?")
    for n in range(allowance - 1):
        await expect_error(
            alice.rpc("ShareWithUser", blob_pb2.ShareWithUserRequest(node_id=node.node_id, recipient=f"guess-{n}-{uuid.uuid4().hex[:6]}@example.com")),
            grpc.StatusCode.NOT_FOUND,
        )
    # The last of the hour's look-ups finds bob; the next is refused before anything is looked up,
    # whether the contact has an account or not: the answer no longer tells.
    await alice.rpc("ShareWithUser", blob_pb2.ShareWithUserRequest(node_id=node.node_id, recipient=bob.email))
    for recipient in (bob.email, f"guess-last-{uuid.uuid4().hex[:6]}@example.com"):
        refused = await expect_error(
            alice.rpc("ShareWithUser", blob_pb2.ShareWithUserRequest(node_id=node.node_id, recipient=recipient)),
            grpc.StatusCode.RESOURCE_EXHAUSTED, reason="SHARE_RATE_LIMITED",
        )
        assert refused.retry_after_seconds and 0 < refused.retry_after_seconds <= 3600, refused
        assert recipient not in refused.message
    # Alice's other calls, and another account's shares, are served.
    assert [s.recipient for s in (await alice.rpc("ListUserShares", blob_pb2.ListUserSharesRequest())).shares] == [bob.email]
    carol = await owners.new()
    photo = await carol.put("photo.jpg", b"carol's photo")
    shared = await carol.rpc("ShareWithUser", blob_pb2.ShareWithUserRequest(node_id=photo.node_id, recipient=bob.email))
    assert shared.share.recipient == bob.email
