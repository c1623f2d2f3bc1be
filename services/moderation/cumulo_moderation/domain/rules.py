"""What a complaint, a counter-notice and a decision must carry. Pure; raises InvalidArgument
naming the field (for a copyright notice, the missing element) and never echoes the value."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import urllib.parse
from typing import Any

from cumulo.moderation.v1 import moderation_pb2 as pb
from cumulo_platform.errors import InvalidArgument, parse_id
from cumulo_platform.text import check_text

MAX_DESCRIPTION = 5000
MAX_FIELD = 500
MAX_REASON = 1000
MAX_CONTACT = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{5,30}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_LINK_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")

CATEGORIES = {
    pb.CATEGORY_ILLEGAL: "illegal",
    pb.CATEGORY_HARMFUL: "harmful",
    pb.CATEGORY_PRIVACY: "privacy",
    pb.CATEGORY_SPAM: "spam",
    pb.CATEGORY_COPYRIGHT: "copyright",
    pb.CATEGORY_OTHER: "other",
}
TARGET_KINDS = {pb.TARGET_KIND_LINK: "link", pb.TARGET_KIND_FILE: "file", pb.TARGET_KIND_ACCOUNT: "account"}
DECISIONS = {
    pb.DECISION_DISMISS: "dismiss",
    pb.DECISION_BLOCK: "block",
    pb.DECISION_DELETE: "delete",
    pb.DECISION_WARN: "warn",
    pb.DECISION_SUSPEND: "suspend",
    pb.DECISION_TERMINATE: "terminate",
}
# The elements of a copyright notice, in the order they are checked.
COPYRIGHT_TEXT = (
    ("rights_holder", "the rights holder's name"),
    ("rights_holder_contact", "the rights holder's contact (address, phone or e-mail)"),
    ("work", "the copyrighted work"),
    ("location", "where the infringing material is"),
    ("signature", "the complainant's signature (full name)"),
)
COPYRIGHT_STATEMENTS = (
    ("good_faith_statement", "the good-faith statement that the use is not authorised"),
    ("accuracy_statement", "the statement that the notice is accurate and the complainant may act for the rights holder"),
)


@dataclasses.dataclass(frozen=True)
class Target:
    kind: str  # link, file, account
    value: str  # the link token, node id, or account id / login


@dataclasses.dataclass(frozen=True)
class Complaint:
    target: Target
    category: str
    description: str
    contact_address: str
    copyright: dict[str, Any] | None


def check_contact(value: str, field: str, *, required: bool) -> str:
    text = check_text(value, field, "a contact address", MAX_CONTACT, empty=not required)
    if text and not (_EMAIL.match(text) or _PHONE.match(text)):
        raise InvalidArgument(field, "must be an e-mail address or a phone number")
    return text


def link_token(value: str) -> str:
    """The token of a share link given as the token itself or as any URL or command ending in it."""
    text = value.strip()
    parsed = urllib.parse.urlparse(text)
    query = urllib.parse.parse_qs(parsed.query).get("token")
    token = query[0] if query else text.rstrip("/").rsplit("/", 1)[-1].rsplit(" ", 1)[-1]
    if not _LINK_TOKEN.match(token):
        raise InvalidArgument("target.link", "must be a share link (its token, or a URL ending in it)")
    return token


def check_target(target: pb.Target) -> Target:
    kind = TARGET_KINDS.get(target.kind)
    if kind is None:
        raise InvalidArgument("target.kind", "must be LINK, FILE or ACCOUNT")
    if kind == "link":
        return Target(kind, link_token(target.link))
    if kind == "file":
        value = target.node_id.strip()
        if not value:
            raise InvalidArgument("target.node_id", "a file complaint names the file's node id")
        return Target(kind, str(parse_id(value, "target.node_id", "a file's node id (UUID)")))
    value = check_text(target.account, "target.account", "an account (id, e-mail or phone)", MAX_CONTACT, empty=False)
    if not (_UUID.match(value) or _EMAIL.match(value) or _PHONE.match(value)):
        raise InvalidArgument("target.account", "must be an account id, an e-mail address or a phone number")
    return Target(kind, value)


def check_copyright(claim: pb.CopyrightClaim) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for name, what in COPYRIGHT_TEXT:
        value = getattr(claim, name)
        if not value.strip():
            raise InvalidArgument(f"copyright.{name}", f"a copyright notice must give {what}")
        checked[name] = check_text(value, f"copyright.{name}", what, MAX_FIELD)
    for name, what in COPYRIGHT_STATEMENTS:
        if not getattr(claim, name):
            raise InvalidArgument(f"copyright.{name}", f"a copyright notice must make {what}")
        checked[name] = True
    return checked


def check_complaint(request: pb.FileComplaintRequest, *, signed_in: bool) -> Complaint:
    target = check_target(request.target)
    category = CATEGORIES.get(request.category)
    if category is None:
        raise InvalidArgument("category", "must be ILLEGAL, HARMFUL, PRIVACY, SPAM, COPYRIGHT or OTHER")
    description = check_description(request.description)
    contact = check_contact(request.contact_address, "contact_address", required=not signed_in)
    claim = None
    if category == "copyright":
        if not request.HasField("copyright"):
            raise InvalidArgument("copyright", "a copyright complaint must carry the notice's elements (rights holder, work, ...)")
        claim = check_copyright(request.copyright)
    elif request.HasField("copyright"):
        raise InvalidArgument("copyright", "only a COPYRIGHT complaint carries a copyright notice")
    return Complaint(target, category, description, contact, claim)


def check_description(value: str, field: str = "description") -> str:
    return check_text(value, field, "the description", MAX_DESCRIPTION, empty=False, multiline=True)


def check_reason(value: str, field: str = "reason") -> str:
    return check_text(value, field, "a reason", MAX_REASON, empty=False, multiline=True)


def check_counter_notice(request: pb.FileCounterNoticeRequest) -> dict[str, Any]:
    notice: dict[str, Any] = {
        "statement": check_text(request.statement, "statement", "the statement", MAX_DESCRIPTION, empty=False, multiline=True),
        "name": check_text(request.name, "name", "your full name", MAX_FIELD, empty=False),
        "contact": check_text(request.contact, "contact", "your address, phone or e-mail", MAX_FIELD, empty=False),
    }
    if not request.consent_to_jurisdiction:
        raise InvalidArgument("consent_to_jurisdiction", "a counter-notice must consent to the courts' jurisdiction")
    if not request.good_faith_statement:
        raise InvalidArgument("good_faith_statement", "a counter-notice must state in good faith that the removal was a mistake")
    notice["consent_to_jurisdiction"] = True
    notice["good_faith_statement"] = True
    return notice


def receipt_hash(receipt: str) -> bytes:
    """What is kept of a complaint's receipt: only its holder can prove the complaint theirs."""
    return hashlib.sha256(receipt.encode()).digest()
