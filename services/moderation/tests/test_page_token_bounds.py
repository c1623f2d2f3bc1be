"""Page tokens a moderator sends back, checked whatever their size or make: a token no page
gave out is INVALID_ARGUMENT naming `page_token`, never an error inside (a time without its
UTC offset, a year past the calendar's end in UTC, a megabyte, JSON nested past the parser)."""

from __future__ import annotations

import base64
import uuid

import grpc

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import expect_error
from cumulo_platform.paging import encode_token

INVALID = grpc.StatusCode.INVALID_ARGUMENT
ANY_CASE = str(uuid.uuid4())
EVERY_LIST = {
    "one-megabyte": "A" * (1024 * 1024),
    "nested-a-thousand-deep": base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode(),
    "a-sync-change-token": encode_token([1, str(uuid.uuid4()), 3]),
}
QUEUE_ONLY = {
    "a-time-without-offset": encode_token(["2026-01-01T00:00:00", ANY_CASE]),
    "year-one-east-of-utc": encode_token(["0001-01-01T00:00:00+14:00", ANY_CASE]),
    "a-blob-trash-token-of-a-node": encode_token(["2026-01-01T00:00:00+00:00", "not-a-case-id"]),
}


async def test_queue_audit_and_blocklist_page_tokens_no_page_gave_are_invalid_argument(moderator):
    stub = moderator.moderation.stub
    for method in ("ListQueue", "ListAudit", "ListBlocklist"):
        tokens = {**EVERY_LIST, **(QUEUE_ONLY if method == "ListQueue" else {})}
        for token in tokens.values():
            request = getattr(pb, f"{method}Request")(page_token=token)
            await expect_error(moderator.call(getattr(stub, method), request), INVALID, field="page_token")
