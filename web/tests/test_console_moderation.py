"""Moderation in a real browser: a moderator finds a copyright complaint's case in the queue,
reads its complaints and audit trail, claims it and blocks the file; the owner sees the decision
under their complaints and files a counter-notice. A person without the role sees no queue
and is refused one by address."""

from __future__ import annotations

import pathlib

from playwright.async_api import Browser, Page, expect

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_devstack.testing.accounts import Person, new_moderator
from cumulo_devstack.testing.browser import console_context
from cumulo_devstack.testing.waiting import eventually

from .conftest import sign_in


async def test_a_moderator_blocks_a_reported_file_and_the_owner_disputes_it(
    page: Page, person: Person, people, auth, browser: Browser, console: str, tmp_path: pathlib.Path
):
    (tmp_path / "harbour.jpg").write_bytes(b"harbour at dawn" * 1000)
    node = await person.client.files.upload(tmp_path / "harbour.jpg")
    reporter = await people.new("reporter")
    claim = pb.CopyrightClaim(
        rights_holder="Lumen Pictures Ltd", rights_holder_contact="legal@lumen.example", work="the photograph 'Harbour at Dawn'",
        location="the file reported", good_faith_statement=True, accuracy_statement=True, signature="Jane Roe",
    )
    await reporter.client.complaints.report(
        "file", node.node_id, category="copyright", description="our photograph, reported in a test", copyright=claim
    )
    moderator = await new_moderator(people, auth.target)

    async def case_of_the_file() -> pb.CaseSummary | None:
        found = [c async for c in moderator.client.moderation.queue() if c.node_id == node.node_id]
        return found[0] if found else None

    case = await eventually(case_of_the_file, timeout=20, what="the case of the report")
    await sign_in(page, moderator)
    await page.get_by_role("link", name="Moderation").click()
    title = f"Case {case.case_id[:8]}"
    await page.get_by_role("button", name=title).click()
    region = page.get_by_role("region", name=title)
    await expect(region).to_contain_text("our photograph, reported in a test")
    await expect(region).to_contain_text("Lumen Pictures Ltd")
    await region.get_by_role("button", name="Claim").click()
    await expect(region.locator(".audit")).to_contain_text("claim")
    await region.get_by_label("Decision").select_option(label="BLOCK")
    await region.get_by_label("Reason (told to the owner)").fill("copyright: the studio's photograph")
    await region.get_by_role("button", name="Decide").click()
    await expect(page.get_by_role("button", name=title)).to_have_count(0)  # decided: out of the queue
    decided = (await moderator.client.moderation.case(case.case_id)).case
    assert (decided.state, decided.decision) == (pb.CASE_STATE_DECIDED, pb.DECISION_BLOCK)

    owner = await console_context(browser, console)
    try:
        owners_page = await owner.new_page()
        await sign_in(owners_page, person, "/cases")
        await expect(owners_page.get_by_text("copyright: the studio's photograph")).to_be_visible()
        await owners_page.get_by_role("button", name="Dispute (counter-notice)").click()
        await owners_page.get_by_label("Why the material was removed by mistake").fill("it is my own photograph of my own harbour")
        await owners_page.get_by_label("Your full name (signature)").fill("Ann Owner")
        await owners_page.get_by_label("Your e-mail address (for our answer)").fill(person.email)
        await owners_page.get_by_label("I consent to the jurisdiction").check()
        await owners_page.get_by_label("I believe in good faith").check()
        await owners_page.get_by_role("button", name="Send the counter-notice").click()
        await expect(owners_page.get_by_role("status")).to_have_text("Your counter-notice was received.")
        assert await owners_page.get_by_role("link", name="Moderation").count() == 0  # not a moderator
    finally:
        await owner.close()


async def test_the_queue_is_refused_to_a_person_without_the_role(page: Page, person: Person):
    await sign_in(page, person)
    await expect(page.get_by_role("link", name="Moderation")).to_have_count(0)
    await page.goto("/moderation")
    await expect(page.get_by_role("alert")).to_have_attribute("data-reason", "NOT_A_MODERATOR")
