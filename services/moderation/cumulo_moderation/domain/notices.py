"""What the owner of affected content or an affected account is told, and the complainant of a
disputed takedown. Delivered through the lifecycle's notice path (a `notice.requested` event)
to the contacts on record.

A file or folder is named by its path as its owner sees it ("your file /photos/harbour.jpg");
when that is not known (it is gone, or could not be looked up), by what still tells it apart
("a file you shared by link (reported on ...)"). Every message says what the person can do
next, and until when."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

CATEGORY_WORDS = {
    "illegal": "illegal content",
    "harmful": "harmful content",
    "privacy": "a breach of someone's privacy",
    "spam": "spam",
    "copyright": "copyright infringement",
    "other": "a breach of the terms of service",
}
CASES_COMMAND = "cumulo report cases"


@dataclasses.dataclass(frozen=True)
class Message:
    subject: str
    body: str


@dataclasses.dataclass(frozen=True)
class Place:
    """Where the owner's file or folder is, as they see it; or that it is gone; or neither
    (not known: the service that keeps files did not answer)."""

    path: str = ""
    in_trash: bool = False
    gone: bool = False

    @property
    def known(self) -> bool:
        return bool(self.path) or self.gone


UNKNOWN = Place()
GONE = Place(gone=True)


@dataclasses.dataclass(frozen=True)
class About:
    """The content a notice is about: a file or a folder; reported by a share link ("link"),
    by itself ("file") or matched on upload ("upload"); and when (local time), which names it
    when its path cannot."""

    node_kind: str
    via: str
    since: str


def span(length: dt.timedelta) -> str:
    """A waiting period for people: "14 days", "20 seconds", "1 day 12 hours"."""
    seconds = int(length.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}" + ("" if count == 1 else "s"))
    return " ".join(parts[:2]) or "0 seconds"


def name(about: About, place: Place) -> str:
    """The content as the owner knows it, to go into a sentence ("your file /a/b.jpg")."""
    noun = "folder" if about.node_kind == "folder" else "file"
    if place.path:
        return f"your {noun} {place.path}" + (" (now in your trash)" if place.in_trash else "")
    if about.via == "link":
        return f"a {noun} you shared by link (reported on {about.since})"
    if about.via == "upload":
        return f"a {noun} you uploaded on {about.since}"
    return f"a {noun} in your account (reported on {about.since})"


def _first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _why(category: str, reason: str) -> str:
    return f"The review found {CATEGORY_WORDS.get(category, 'a breach of the terms of service')}: {reason}"


def _see(case_id: str) -> str:
    return f"`{CASES_COMMAND}` shows this case ({case_id}) and every decision about your content and account."


def _reply(case_id: str) -> str:
    return f"If you believe this is a mistake, reply to this message quoting case {case_id}. There is no deadline for it."


def counter_notice_steps(case_id: str, counter_wait: str) -> str:
    return (
        f"If you believe the material was blocked by mistake (it is yours, or you have a licence), file a counter-notice:\n"
        f'  cumulo report counter-notice {case_id} --statement "why it was blocked by mistake" --name "your full name" '
        f'--contact "your address, phone or e-mail" --consent\n'
        f"There is no deadline for filing it; the file stays blocked until then. After a counter-notice the file is "
        f"restored {counter_wait} later, unless the complainant reports in that time that they have taken legal action."
    )


def _next(*steps: str) -> str:
    return "\n\nWhat you can do:\n" + "\n".join(steps)


def decided(
    *, decision: str, category: str, reason: str, case_id: str, what: str = "", until: str = "", counter_wait: str = "",
    node_kind: str = "file", export_until: str = "",
) -> Message | None:
    """The message for a decision, or None when the owner has nothing to hear (a dismissal).
    `what`: the content, named by `name` ("" for a case about the account)."""
    why = _why(category, reason)
    appeal = _next(_reply(case_id), _see(case_id))
    if decision == "block" and node_kind == "folder":
        return Message(
            "A share link of yours has been disconnected",
            f"The share link to {what} has been disconnected after a complaint: it no longer opens. The folder itself "
            f"stays in your account, as do your other links to it.\n\n{why}{appeal}",
        )
    if decision == "block":
        if category == "copyright":
            appeal = _next(counter_notice_steps(case_id, counter_wait), _see(case_id))
        return Message(
            "A file in your cumulo account has been blocked",
            f"{_first(what)} has been blocked after a complaint. It cannot be downloaded, and its share links no longer "
            f"work.\n\n{why}{appeal}",
        )
    if decision == "delete":
        return Message(
            "A file in your cumulo account has been removed",
            f"{_first(what)} has been deleted after a complaint; a deleted file cannot be restored, so no counter-notice "
            f"applies.\n\n{why}{appeal}",
        )
    about = f"about {what}" if what else "about your account or its content"
    if decision == "warn":
        return Message(
            "A warning about your cumulo account",
            f"A complaint {about} was upheld. Nothing was removed this time, but repeated breaches can lead to "
            f"suspension or closure of the account.\n\n{why}{appeal}",
        )
    if decision == "suspend":
        return Message(
            "Your cumulo account has been suspended",
            f"After a complaint {about}, your cumulo account is suspended until {until}: you cannot sign in until "
            f"then, and the apps signed in stop working within minutes. Your data is kept.\n\n{why}{appeal}",
        )
    if decision == "terminate":
        if export_until:
            return Message(
                "Your cumulo account is being closed",
                f"After a complaint {about}, your cumulo account has been closed. Until {export_until} you may still sign in, "
                f"only to take a copy of your data out; then it is deleted.\n\n{why}"
                + _next("Sign in and download your data: `cumulo takeout start --wait --dest FOLDER`, or the web console's take-out page.", _reply(case_id)),
            )
        return Message(
            "Your cumulo account is being closed",
            f"After a complaint {about}, your cumulo account has been closed and its data will be deleted.\n\n{why}"
            + _next(_reply(case_id)),
        )
    return None


def auto_blocked(*, what: str, case_id: str) -> Message:
    return Message(
        "A file in your cumulo account is blocked pending review",
        f"{_first(what)} matches content that is known to be unlawful and has been blocked until a moderator "
        f"reviews it (case {case_id}). It cannot be downloaded or shared meanwhile."
        + _next("Nothing, for now: a moderator reviews the case, and you will hear the decision.", _reply(case_id), _see(case_id)),
    )


def restored(*, what: str, case_id: str, kept: bool = False, node_kind: str = "file") -> Message:
    """`kept`: the takedown is withdrawn, but another case's decision still blocks the content."""
    waited = "The complainant did not report legal action within the waiting period after your counter-notice"
    if node_kind == "folder":
        return Message(
            "Your share link works again",
            f"{waited}, so the share link to {what} that the takedown disconnected works again (case {case_id})."
            + _next("Nothing: the case is closed.", _see(case_id)),
        )
    if kept:
        return Message(
            "A takedown of your file is withdrawn",
            f"{waited}, so the takedown of {what} is withdrawn (case {case_id}). It stays blocked, though: another "
            f"case's decision blocks it." + _next(_see(case_id)),
        )
    return Message(
        "Your file is available again",
        f"{waited}, so {what} is available again (case {case_id}). Share links that the takedown disconnected work again."
        + _next("Nothing: the case is closed.", _see(case_id)),
    )


def legal_action(*, what: str, case_id: str) -> Message:
    return Message(
        "The complainant has taken legal action",
        f"The complainant reported legal action about {what} (case {case_id}); it stays blocked until the matter "
        f"is resolved."
        + _next(
            "The dispute is now between you and the complainant, before the courts. If it is resolved in your "
            f"favour, reply to this message quoting case {case_id}, with the court's decision.",
            _see(case_id),
        ),
    )


def counter_notice_filed(case_id: str, complaint_id: str, restore_at: str, notice: dict[str, str]) -> Message:
    return Message(
        "A counter-notice was filed against your copyright complaint",
        f"The owner of the material you reported (case {case_id}) filed a counter-notice:\n\n"
        f"  {notice['statement']}\n  -- {notice['name']}, {notice['contact']}\n\n"
        f"The owner consents to the jurisdiction of the courts and states in good faith that the material "
        f"was removed by mistake. It will be restored at {restore_at} unless you report, before then, "
        f"that you have taken legal action:\n"
        f"  cumulo report legal-action {complaint_id} --description WHAT   (it asks for the complaint's receipt)",
    )


# The owner's notices about content, by kind: what `OwnerNotices` renders once it knows where
# the content is.
RENDER: dict[str, Callable[..., Message | None]] = {
    "decided": decided,
    "auto_blocked": auto_blocked,
    "restored": restored,
    "legal_action": legal_action,
}


def render(kind: str, args: dict[str, Any], what: str) -> Message | None:
    return RENDER[kind](what=what, **args)
