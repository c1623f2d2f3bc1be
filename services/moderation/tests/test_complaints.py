"""Complaint intake through the gateway on the session's real servers: complaints about one
target joining one case, an account named by its e-mail address, and the rate limits per
reporter and per network address."""

from __future__ import annotations

import dataclasses
import datetime as dt

import grpc

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing import expect_error, unique_email

from .helpers import complain_about_file

# --- 1. complaints joining cases ---------------------------------------------------------------


async def test_complaints_about_one_file_in_one_category_join_one_case(owner, reporter, anonymous, moderator):
    first = await complain_about_file(reporter, owner.file_id, "harmful")
    second = await anonymous.complaints.report(
        "link", owner.link_token, category="harmful", description="the same file, by its link",
        contact_address=unique_email(), signed_in=False,
    )
    assert second.case_id == first.case_id and second.complaint_id != first.complaint_id
    found = await moderator.moderation.case(first.case_id)
    assert found.case.complaints == 2
    assert {c.complaint_id for c in found.complaints} == {first.complaint_id, second.complaint_id}
    assert found.case.node_id == owner.file_id and found.case.account_id == owner.account_id

    other = await complain_about_file(reporter, owner.file_id, "privacy")
    assert other.case_id != first.case_id
    assert (await moderator.moderation.case(other.case_id)).case.complaints == 1
    assert (await moderator.moderation.case(first.case_id)).case.complaints == 2


async def test_a_complaint_about_an_account_by_email_names_the_account(owner, reporter, anonymous, moderator):
    filed = await reporter.client.complaints.report("account", owner.email, category="spam", description="spams my inbox")
    found = await moderator.moderation.case(filed.case_id)
    assert found.case.account_id == owner.account_id
    assert found.case.target_kind == pb.TARGET_KIND_ACCOUNT and found.case.node_id == ""
    # By its id, or its address written differently, it is the same account and the same case.
    by_id = await anonymous.complaints.report(
        "account", owner.account_id, category="spam", description="spam again", contact_address=unique_email(), signed_in=False,
    )
    by_upper = await reporter.client.complaints.report("account", owner.email.upper(), category="spam", description="and again")
    assert by_id.case_id == filed.case_id == by_upper.case_id
    assert (await moderator.moderation.case(filed.case_id)).case.complaints == 3


# --- 2. rate limits -----------------------------------------------------------------------------------


async def test_complaints_from_one_reporter_are_rate_limited(owner, anonymous, moderator, moderation):
    settings = moderation.app.settings
    limit = settings.complaints_per_reporter
    assert limit + 1 < settings.complaints_per_address  # the per-reporter limit is the one reached here
    contact = unique_email()

    def report(address: str, number: int):
        return anonymous.complaints.report(
            "account", owner.account_id, category="other", description=f"complaint number {number}",
            contact_address=address, signed_in=False,
        )

    # A counting window of this test's own, long past: every complaint the session files
    # through the gateway shares one network address (Envoy appends 127.0.0.1), whose current
    # window this test neither fills nor resets (a bump deletes only the key's older windows).
    # Anonymous complaints: no access token to check against the moved clock.
    shift = -dt.timedelta(days=4321, hours=7)
    moderation.clock.offset += shift
    try:
        accepted = [await report(contact, number) for number in range(limit)]
        await expect_error(report(contact, limit), grpc.StatusCode.RESOURCE_EXHAUSTED, "COMPLAINT_RATE_LIMITED")
        await expect_error(report(contact.upper(), limit + 1), grpc.StatusCode.RESOURCE_EXHAUSTED, "COMPLAINT_RATE_LIMITED")
        another = await report(unique_email(), 0)  # someone else, from the same address, is still heard
    finally:
        moderation.clock.offset -= shift
    case_ids = {filed.case_id for filed in accepted} | {another.case_id}
    assert len(case_ids) == 1
    (case_id,) = case_ids
    assert (await moderator.moderation.case(case_id)).case.complaints == limit + 1  # the refused ones left nothing
    # Its created_at lies long past: decided, so it does not sit at the head of the queue.
    await moderator.moderation.decide(case_id, "dismiss", "rate limit test")


async def test_complaints_from_one_network_address_are_rate_limited(owner, anonymous, moderator, moderation):
    """Many reporters from one address: the per-address limit (lowered here to 5 for this test;
    the session allows many, since all its complaints come from 127.0.0.1)."""
    complaints = moderation.app.complaints
    original = complaints.settings
    complaints.settings = dataclasses.replace(original, complaints_per_address=5)
    shift = -dt.timedelta(days=5432, hours=3)  # a counting window of this test's own, long past
    moderation.clock.offset += shift
    try:
        accepted = [
            await anonymous.complaints.report(
                "account", owner.account_id, category="spam", description=f"reporter {n}", contact_address=unique_email(), signed_in=False
            )
            for n in range(5)
        ]
        await expect_error(
            anonymous.complaints.report(
                "account", owner.account_id, category="spam", description="one more", contact_address=unique_email(), signed_in=False
            ),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "COMPLAINT_RATE_LIMITED",
        )
    finally:
        moderation.clock.offset -= shift
        complaints.settings = original
    (case_id,) = {filed.case_id for filed in accepted}
    assert (await moderator.moderation.case(case_id)).case.complaints == 5
    await moderator.moderation.decide(case_id, "dismiss", "rate limit test")

