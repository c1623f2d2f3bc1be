"""The words of moderation's notices (domain/notices.py), without servers: how content is
named, with its path or without, how times and waiting periods read, and that every notice
says what the person can do next."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from cumulo_moderation.domain import notices
from cumulo_moderation.domain.notices import GONE, UNKNOWN, About, Place
from cumulo_platform.text import local_time

CASE = "0b7c2f6e-5d3a-4e4b-9a51-2f0d8c1e7a90"
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
REPORTED = "2026-12-18 14:04 CST (Asia/Shanghai)"
BY_LINK = About(node_kind="file", via="link", since=REPORTED)


def test_times_are_local_with_the_zone_named():
    at = dt.datetime(2026, 12, 18, 6, 4, 25, tzinfo=dt.UTC)
    # As OwnerNotices.local tells them: to the minute.
    assert local_time(at, SHANGHAI, seconds=False) == REPORTED
    assert local_time(at, zoneinfo.ZoneInfo("UTC"), seconds=False) == "2026-12-18 06:04 UTC"
    assert local_time(at, zoneinfo.ZoneInfo("Europe/Berlin"), seconds=False) == "2026-12-18 07:04 CET (Europe/Berlin)"


@pytest.mark.parametrize(
    ("length", "text"),
    [
        (dt.timedelta(days=14), "14 days"),
        (dt.timedelta(seconds=20), "20 seconds"),
        (dt.timedelta(days=1, hours=12), "1 day 12 hours"),
        (dt.timedelta(hours=1, minutes=1, seconds=5), "1 hour 1 minute"),
    ],
)
def test_waiting_periods_read_as_words(length, text):
    assert notices.span(length) == text


def test_content_is_named_by_its_path_or_by_what_still_tells_it_apart():
    assert notices.name(BY_LINK, Place(path="/photos/2026/harbour.jpg")) == "your file /photos/2026/harbour.jpg"
    assert notices.name(BY_LINK, Place(path="/old.jpg", in_trash=True)) == "your file /old.jpg (now in your trash)"
    assert notices.name(About("folder", "link", REPORTED), Place(path="/albums/summer")) == "your folder /albums/summer"
    assert notices.name(BY_LINK, GONE) == f"a file you shared by link (reported on {REPORTED})"
    assert notices.name(About("file", "file", REPORTED), UNKNOWN) == f"a file in your account (reported on {REPORTED})"
    assert notices.name(About("file", "upload", REPORTED), GONE) == f"a file you uploaded on {REPORTED}"


def decided(decision: str, category: str = "harmful", what: str = "your file /photos/harbour.jpg", **extra) -> notices.Message:
    message = notices.decided(decision=decision, category=category, reason="upheld", case_id=CASE, what=what, counter_wait="14 days", **extra)
    assert message is not None
    return message


def test_a_copyright_block_says_how_to_counter_notice_and_that_there_is_no_deadline():
    body = decided("block", "copyright").body
    assert body.startswith("Your file /photos/harbour.jpg has been blocked after a complaint.")
    assert (
        f'cumulo report counter-notice {CASE} --statement "why it was blocked by mistake" --name "your full name" '
        f'--contact "your address, phone or e-mail" --consent'
    ) in body
    assert "There is no deadline for filing it" in body and "restored 14 days later" in body
    assert f"`cumulo report cases` shows this case ({CASE})" in body


@pytest.mark.parametrize("decision", ["block", "delete", "warn", "suspend", "terminate"])
def test_every_decision_says_what_the_owner_can_do(decision):
    body = decided(decision, until=REPORTED).body
    assert "What you can do:" in body and f"quoting case {CASE}" in body and "no deadline" in body
    assert "photos/harbour.jpg" in body


def test_other_decisions_name_the_content_and_a_suspension_its_end_in_local_time():
    assert decided("delete").body.startswith("Your file /photos/harbour.jpg has been deleted after a complaint")
    assert "counter-notice" not in decided("block", "harmful").body  # only a copyright takedown can be disputed so
    assert decided("warn").body.startswith("A complaint about your file /photos/harbour.jpg was upheld.")
    assert decided("warn", what="").body.startswith("A complaint about your account or its content was upheld.")
    assert f"suspended until {REPORTED}" in decided("suspend", until=REPORTED, what="").body
    assert notices.decided(decision="dismiss", category="spam", reason="r", case_id=CASE) is None
    folder = decided("block", what="your folder /albums/summer", node_kind="folder")
    assert folder.subject == "A share link of yours has been disconnected"
    assert folder.body.startswith("The share link to your folder /albums/summer has been disconnected")


def test_a_fallback_name_reads_as_a_sentence():
    body = decided("block", what=notices.name(BY_LINK, GONE)).body
    assert body.startswith(f"A file you shared by link (reported on {REPORTED}) has been blocked")


def test_automatic_blocks_restores_and_legal_action_name_the_file_and_the_next_step():
    auto = notices.auto_blocked(what="your file /inbox/scan.bin", case_id=CASE).body
    assert auto.startswith("Your file /inbox/scan.bin matches content") and "you will hear the decision" in auto
    back = notices.restored(what="your file /photos/harbour.jpg", case_id=CASE).body
    assert "so your file /photos/harbour.jpg is available again" in back and "`cumulo report cases`" in back
    kept = notices.restored(what="your file /photos/harbour.jpg", case_id=CASE, kept=True)
    assert "It stays blocked, though" in kept.body and "available again" not in kept.subject + kept.body
    folder = notices.restored(what="your folder /albums/summer", case_id=CASE, node_kind="folder")
    assert folder.subject == "Your share link works again" and "the share link to your folder /albums/summer" in folder.body
    legal = notices.legal_action(what="your file /photos/harbour.jpg", case_id=CASE).body
    assert "legal action about your file /photos/harbour.jpg" in legal and "What you can do:" in legal


def test_render_goes_by_kind_with_the_content_named():
    message = notices.render("restored", {"case_id": CASE}, "your file /a.jpg")
    assert message is not None and "your file /a.jpg is available again" in message.body
