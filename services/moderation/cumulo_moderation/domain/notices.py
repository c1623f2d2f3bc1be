"""What the owner of affected content or an affected account is told. Delivered through the
lifecycle's notice path (a `notice.requested` event) to the contacts on record."""

from __future__ import annotations

import dataclasses

CATEGORY_WORDS = {
    "illegal": "illegal content",
    "harmful": "harmful content",
    "privacy": "a breach of someone's privacy",
    "spam": "spam",
    "copyright": "copyright infringement",
    "other": "a breach of the terms of service",
}


@dataclasses.dataclass(frozen=True)
class Message:
    subject: str
    body: str


def _why(category: str, reason: str) -> str:
    return f"The review found {CATEGORY_WORDS.get(category, 'a breach of the terms of service')}: {reason}"


def decided(decision: str, *, category: str, reason: str, node_id: str, case_id: str, until: str = "") -> Message | None:
    """The message for a decision, or None when the owner has nothing to hear (a dismissal)."""
    why = _why(category, reason)
    appeal = (
        f"\n\nIf you believe the material was removed by mistake, you can file a counter-notice:\n"
        f"  cumulo report counter-notice {case_id}\n"
        f"The file is then restored after a waiting period unless the complainant takes legal action."
        if category == "copyright" and decision == "block"
        else f"\n\nIf you believe this is a mistake, reply to this message quoting case {case_id}."
    )
    if decision == "block":
        return Message(
            "A file in your cumulo account has been blocked",
            f"Your file {node_id} has been blocked after a complaint. It cannot be downloaded, and its share "
            f"links no longer work.\n\n{why}{appeal}",
        )
    if decision == "delete":
        return Message(
            "A file in your cumulo account has been removed",
            f"Your file {node_id} has been deleted after a complaint.\n\n{why}{appeal}",
        )
    if decision == "warn":
        return Message(
            "A warning about your cumulo account",
            f"A complaint about your account or its content was upheld. Nothing was removed this time, but "
            f"repeated breaches can lead to suspension or closure of the account.\n\n{why}{appeal}",
        )
    if decision == "suspend":
        return Message(
            "Your cumulo account has been suspended",
            f"Your cumulo account is suspended until {until}: you cannot sign in until then, and the apps "
            f"signed in stop working within minutes. Your data is kept.\n\n{why}{appeal}",
        )
    if decision == "terminate":
        return Message(
            "Your cumulo account is being closed",
            f"Your cumulo account has been closed and its data will be deleted.\n\n{why}\n\n"
            f"If you believe this is a mistake, reply to this message quoting case {case_id}.",
        )
    return None


def auto_blocked(node_id: str, case_id: str) -> Message:
    return Message(
        "A file in your cumulo account is blocked pending review",
        f"Your file {node_id} matches content that is known to be unlawful and has been blocked until a "
        f"moderator reviews it (case {case_id}). It cannot be downloaded or shared meanwhile.",
    )


def restored(node_id: str, case_id: str) -> Message:
    return Message(
        "Your file is available again",
        f"The complainant did not report legal action within the waiting period after your counter-notice, "
        f"so your file {node_id} is available again (case {case_id}). Share links that the takedown "
        f"disconnected work again.",
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


def legal_action(node_id: str, case_id: str) -> Message:
    return Message(
        "The complainant has taken legal action",
        f"The complainant reported legal action about your file {node_id} (case {case_id}); it stays "
        f"blocked until the matter is resolved.",
    )
