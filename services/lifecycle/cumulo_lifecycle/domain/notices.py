"""The lifecycle's notices in the user's language (zh-CN, en). Each states exact dates and
times in the operator's time zone (local time, the zone's abbreviation and name: the values
are filled in with cumulo_platform.text.local_time), and how to keep the account. A deletion
is stated by the rule that computed it: a grace of days ends when its last natural day ends
("at <time>, that is, when <day> ends"); an exact grace (hours, minutes, seconds) at a time
("at <time>"): the values leave `last_day` empty then."""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Callable, Mapping

LOCALES = ("zh-CN", "en")
KINDS = ("freeze_reminder", "frozen", "deletion_reminder", "reactivated", "deleted")


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


# When the data goes, by the rule that computed it: the end of a natural day, or an exact time.
_DELETION = {
    "en": ("at {delete_at}, that is, when {last_day} ends", "at {delete_at}"),
    "zh-CN": ("{delete_at}（即 {last_day} 结束时）", "{delete_at} "),
}


_TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "freeze_reminder": (
            "Your cumulo account will be frozen on {freeze_at}",
            "Your cumulo account has not been used since {last_access_at}.\n\n"
            "If it stays unused, it will be frozen at {freeze_at}. A frozen account keeps its data "
            "for {grace} more; after that, everything stored in it (files, photos, backups, synced "
            "data and device locations) is deleted for good.\n\n"
            "To keep your account, simply sign in or use any cumulo app before then.",
        ),
        "frozen": (
            "Your cumulo account is frozen: its data will be deleted at {delete_at}",
            "Your cumulo account has not been used since {last_access_at} and is now frozen.\n\n"
            "Unless you use it again, all of its cloud content (files, photos, backups, synced data "
            "and device locations) will be deleted permanently {deletion}.\n\n"
            "To keep your account and everything in it, do any of these before then:\n"
            "  - sign in or use any cumulo app or the web console;\n"
            "  - open this link: {reactivate_link}",
        ),
        "deletion_reminder": (
            "Reminder: your cumulo account's data will be deleted at {delete_at}",
            "Your cumulo account is frozen. All of its cloud content will be deleted permanently "
            "{deletion}.\n\n"
            "To keep it, sign in or use any cumulo app before then, or open this link: {reactivate_link}",
        ),
        "reactivated": (
            "Your cumulo account is active again",
            "Your cumulo account was used at {at} and is active again. Nothing has been deleted.\n\n"
            "If this was not you, change your password now.",
        ),
        "deleted": (
            "Your cumulo account's data has been deleted",
            "Your cumulo account stayed unused after it was frozen, so its cloud content was deleted "
            "at {deleted_at}. This cannot be undone.\n\nYou are welcome to create a new account at any time.",
        ),
        "deleted_cancellation": (
            "Your cumulo account has been deleted",
            "As you asked, your cumulo account was cancelled and its cloud content deleted at "
            "{deleted_at}. This cannot be undone.",
        ),
        "deleted_termination": (
            "Your cumulo account has been closed",
            "Your cumulo account was closed for breaking the terms of service, as we told you "
            "before, and its cloud content was deleted at {deleted_at}. This cannot be undone.",
        ),
        "new_session": (
            "New sign-in to your cumulo account",
            "Your cumulo account was signed in to at {at}: {device} ({app}), from the address {address}.\n\n"
            "If this was you, there is nothing to do. If it was not, change your password now: that "
            "ends every other session. You can also end just this one: {revoke_link} (or `cumulo sessions` and "
            "`cumulo revoke-session`, or Settings in the web console).",
        ),
        "shared_with_you": (
            "{owner} shared \u201c{name}\u201d with you",
            "{owner} shared the {what} \u201c{name}\u201d with you on cumulo at {at}.\n\n"
            "You find it under Shared with me in the web console, or with `cumulo shared`.",
        ),
            "verify_contact": (
            "Your cumulo verification code",
            "Your cumulo verification code is {code}. It is good for {minutes} minutes.\n\n"
            "Enter it where you asked for it. If you did not ask for it, someone may have typed "
            "this address by mistake: ignore this message. Unless the code is entered, cumulo sends nothing else here.",
        ),
        "reset_code": (
            "Your cumulo password reset code",
            "Someone asked to set a new password for your cumulo account. The code is {code}; it is good "
            "for {minutes} minutes.\n\nIf it was not you, ignore this message: your password stays as it is.",
        ),
        "password_reset": (
            "The password of your cumulo account was reset",
            "The password of your cumulo account was set anew at {at}, with a code sent to one of its "
            "contacts, from the address {address}. Every session was signed out.\n\n"
            "If this was not you, set a new one at once (`cumulo reset-password`) and check your contacts.",
        ),
        "contact_changed": (
            "The {what} of your cumulo account was changed",
            "At {at} the {what} of your cumulo account was changed: it is no longer this one. "
            "This is the last message sent here.\n\n"
            "If this was not you, sign in and change your password now: that ends every other session.",
        ),
        "terms_changed": (
            "cumulo's terms of service change on {starts_at}",
            "From {starts_at}, cumulo's terms of service (version {reference}) apply in place of the present ones.{message}\n\n"
            "Read them on the sign-in page or with `cumulo terms`; the first time you sign in after that date you are "
            "asked to accept them. If you do not want to, you can take your data out (`cumulo takeout start`) and cancel "
            "your account.",
        ),
        "maintenance": (
            "cumulo maintenance from {starts_at}",
            "cumulo will be under maintenance from {starts_at} until {ends_at}; it may be slow or unavailable meanwhile."
            "{message}\n\nNothing stored is lost; sync and backups catch up by themselves afterwards.",
        ),
        "price_changed": (
            "The price of your cumulo plan {plan} changes on {applies_at}",
            "From {applies_at}, the plan {plan} costs {new_price} for {period_days} days (now {old_price}).\n\n"
            "What you have bought is not affected, and your renewals keep the price you bought at until you accept the new "
            "one: on the account page of the web console, or with `cumulo plans accept`. If you do not, you may let the plan end.",
        ),
        "export_ready": (
            "Your cumulo data is ready to download",
            "The copy of your cumulo account you asked for was made at {at}: {size} in all.\n\n"
            "Sign in to download it until {expires_at}; after that it is deleted: {link}\n\n"
            "If you did not ask for it, change your password now: that ends every other session.",
        ),
    },
    "zh-CN": {
        "freeze_reminder": (
            "您的 cumulo 账号将于 {freeze_at} 被冻结",
            "您的 cumulo 账号自 {last_access_at} 起未被使用。\n\n"
            "如果继续不使用，账号将于 {freeze_at} 被冻结。冻结后数据将再保留 {grace}，"
            "期满后账号中的全部内容（文件、照片、备份、同步数据和设备位置）将被永久删除。\n\n"
            "如需保留账号，请在此之前登录或使用任意 cumulo 应用。",
        ),
        "frozen": (
            "您的 cumulo 账号已被冻结，数据将于 {delete_at} 删除",
            "您的 cumulo 账号自 {last_access_at} 起未被使用，现已被冻结。\n\n"
            "如果您不再使用，账号中的全部云端内容（文件、照片、备份、同步数据和设备位置）将于 "
            "{deletion}被永久删除。\n\n"
            "如需保留账号及其中的全部内容，请在此之前：\n"
            "  - 登录或使用任意 cumulo 应用或网页端；\n"
            "  - 或打开此链接：{reactivate_link}",
        ),
        "deletion_reminder": (
            "提醒：您的 cumulo 账号数据将于 {delete_at} 删除",
            "您的 cumulo 账号已被冻结，其全部云端内容将于 {deletion}被永久删除。\n\n"
            "如需保留，请在此之前登录或使用任意 cumulo 应用，或打开此链接：{reactivate_link}",
        ),
        "reactivated": (
            "您的 cumulo 账号已恢复正常",
            "您的 cumulo 账号于 {at} 被使用，现已恢复正常，没有任何数据被删除。\n\n如非本人操作，请立即修改密码。",
        ),
        "deleted": (
            "您的 cumulo 账号数据已被删除",
            "您的 cumulo 账号在冻结期内未被使用，其云端内容已于 {deleted_at} 被删除，且无法恢复。\n\n欢迎您随时注册新账号。",
        ),
        "deleted_cancellation": (
            "您的 cumulo 账号已注销",
            "按照您的申请，您的 cumulo 账号已注销，其云端内容已于 {deleted_at} 被删除，且无法恢复。",
        ),
        "deleted_termination": (
            "您的 cumulo 账号已被终止",
            "如此前通知，您的 cumulo 账号因违反服务条款已被终止，其云端内容已于 {deleted_at} 被删除，且无法恢复。",
        ),
        "new_session": (
            "您的 cumulo 账号有新的登录",
            "您的 cumulo 账号于 {at} 在 {device}（{app}）上登录，登录地址为 {address}。\n\n"
            "如是本人操作，无需处理。如非本人操作，请立即修改密码，这将结束其他所有登录会话。"
            "您也可以只结束这一会话：{revoke_link}（或使用 `cumulo sessions` 和 `cumulo revoke-session`，或在网页端的设置中操作）。",
        ),
        "shared_with_you": (
            "{owner} 与您共享了「{name}」",
            "{owner} 于 {at} 在 cumulo 上与您共享了{what}「{name}」。\n\n"
            "您可以在网页端的「与我共享」中找到它，或使用 `cumulo shared`。",
        ),
        "verify_contact": (
            "您的 cumulo 验证码",
            "您的 cumulo 验证码是 {code}，{minutes} 分钟内有效。\n\n"
            "请在申请验证的地方输入。如非本人申请，可能是有人误填了此地址，请忽略本消息。除非输入此验证码，cumulo 不会向此处发送其他内容。",
        ),
        "reset_code": (
            "您的 cumulo 密码重置验证码",
            "有人申请为您的 cumulo 账号设置新密码。验证码是 {code}，{minutes} 分钟内有效。\n\n如非本人操作，请忽略本消息，您的密码不会改变。",
        ),
        "password_reset": (
            "您的 cumulo 账号密码已重置",
            "您的 cumulo 账号密码已于 {at} 通过发送至其联系方式的验证码重置，操作地址为 {address}。所有登录会话均已退出。\n\n"
            "如非本人操作，请立即重新设置密码（`cumulo reset-password`）并检查您的联系方式。",
        ),
        "contact_changed": (
            "您的 cumulo 账号的{what}已更改",
            "您的 cumulo 账号的{what}已于 {at} 更改，不再是本地址。这是发往此处的最后一条消息。\n\n"
            "如非本人操作，请立即登录并修改密码，这将结束其他所有登录会话。",
        ),
        "terms_changed": (
            "cumulo 服务条款将于 {starts_at} 更新",
            "自 {starts_at} 起，cumulo 服务条款（版本 {reference}）将取代现行条款。{message}\n\n"
            "您可以在登录页面或使用 `cumulo terms` 阅读新条款；该日期之后首次登录时，我们会请您确认接受。"
            "如果您不愿接受，可以导出您的数据（`cumulo takeout start`）并注销账号。",
        ),
        "maintenance": (
            "cumulo 将于 {starts_at} 进行维护",
            "cumulo 将于 {starts_at} 至 {ends_at} 进行维护，期间服务可能变慢或暂时无法使用。{message}\n\n"
            "已存储的数据不会丢失；维护结束后同步和备份会自动继续。",
        ),
        "price_changed": (
            "您的 cumulo 套餐 {plan} 将于 {applies_at} 调整价格",
            "自 {applies_at} 起，套餐 {plan} 的价格为每 {period_days} 天 {new_price}（现价 {old_price}）。\n\n"
            "已购买的部分不受影响；在您接受新价格之前，续费仍按您购买时的价格计算。您可以在网页端的账号页面或使用 "
            "`cumulo plans accept` 接受新价格；如不接受，可让套餐到期结束。",
        ),
        "export_ready": (
            "您的 cumulo 数据已可下载",
            "您申请导出的 cumulo 账号数据已于 {at} 生成，共 {size}。\n\n"
            "请在 {expires_at} 之前登录下载，此后数据副本将被删除：{link}\n\n"
            "如非本人申请，请立即修改密码，这将结束其他所有登录会话。",
        ),
    },
}
# Notices other services ask for by kind (notice.requested with `kind`): the lifecycle words
# them in the recipient's language from the values they give.
SERVICE_KINDS = {
    "new_session": ("device", "app", "address", "at"),
    "shared_with_you": ("owner", "name", "what", "at"),
    "password_reset": ("address", "at"),
    "export_ready": ("at", "expires_at", "size", "link"),
    "price_changed": ("plan", "currency", "period_days", "old_price", "new_price", "applies_at"),
}
WHAT = {"en": {"folder": "folder", "file": "file"}, "zh-CN": {"folder": "文件夹", "file": "文件"}}
CONTACT = {"en": {"email": "e-mail address", "phone": "phone number"}, "zh-CN": {"email": "电子邮箱", "phone": "手机号码"}}
SOMEONE = {"en": "A cumulo user", "zh-CN": "一位 cumulo 用户"}
# Before a minor's notice sent to their guardian.
GUARDIAN_NOTE = {
    "en": "You receive this as the guardian of a minor's cumulo account; it is about their account.\n\n",
    "zh-CN": "您作为一位未成年人 cumulo 账号的监护人收到此消息；以下内容与该账号有关。\n\n",
}
# Kinds that go by e-mail only (a share is no reason for an SMS), and how many of a kind a
# person gets in an hour at most (a flood of shares to one address stops reaching it).
EMAIL_ONLY_KINDS = frozenset({"shared_with_you"})
PER_HOUR = {"shared_with_you": 20}
TYPED_MAX = 80


def as_typed(value: str) -> str:
    """What a person typed (a device's name, a folder's name), fit to be quoted in a notice: on
    one line (control and format characters become spaces), at most TYPED_MAX characters."""
    flat = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in value)
    flat = " ".join(flat.split())
    return flat if len(flat) <= TYPED_MAX else flat[: TYPED_MAX - 1] + "\u2026"


def export_values(given: Mapping[str, str], locale: str, local: Callable[[dt.datetime], str]) -> dict[str, str]:
    """A ready take-out's expiry (in the calendar's time zone), its size in words, and the
    console's link as blob gave it (an address of ours, not typed by anyone: kept whole)."""
    try:
        expires = local(dt.datetime.fromisoformat(given.get("expires_at", "")))
    except ValueError:
        expires = "?"
    try:
        size = int(given.get("size", "0"))
    except ValueError:
        size = 0
    link = given.get("link", "")
    if not link.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        link = {"en": "the take-out page of the web console", "zh-CN": "网页端的数据导出页面"}[locale]
    return {"expires_at": expires, "size": human_size(size, locale), "link": link}


def price_values(given: Mapping[str, str], locale: str, local: Callable[[dt.datetime], str]) -> dict[str, str]:
    """A new price's date in the calendar's zone, and amounts in minor units as "21.00 CNY"."""
    try:
        applies = local(dt.datetime.fromisoformat(given.get("applies_at", "")))
    except ValueError:
        applies = "?"
    currency = given.get("currency", "")[:3]

    def money(minor: str) -> str:
        try:
            return f"{int(minor) / 100:.2f} {currency}"
        except ValueError:
            return "-"

    return {"applies_at": applies, "old_price": money(given.get("old_price", "")), "new_price": money(given.get("new_price", ""))}


def human_size(size: int, locale: str) -> str:
    """1234567 -> "1.2 MB" (decimal units, as file managers show them)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def kept_subject(kind: str, subject: str) -> str:
    """What is kept of a notice's subject once it is done: the lifecycle's own say only dates;
    others' may name people and files, and go with the body."""
    return subject if kind in KINDS or kind.startswith("deleted") else ""


def render(kind: str, locale: str, values: dict[str, str]) -> Rendered:
    if locale not in _TEMPLATES:
        locale = "zh-CN"
    subject, body = _TEMPLATES[locale][kind]
    if "{deletion}" in body:
        days, exact = _DELETION[locale]
        values = {**values, "deletion": (days if values.get("last_day") else exact).format(**values)}
    return Rendered(subject.format(**values), body.format(**values))


def describe_duration(months: int, fixed: dt.timedelta, locale: str) -> str:
    """"30 days", "12 months", "3 seconds" / "30 天", ... for notices."""
    parts: list[tuple[int, str, str]] = []
    if months:
        parts.append((months, "month", "个月"))
    days, rest = fixed.days, int(fixed.total_seconds()) - fixed.days * 86400
    if days:
        parts.append((days, "day", "天"))
    if rest:
        parts.append((rest, "second", "秒"))
    if locale == "en":
        return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit, _ in parts) or "0 days"
    return " ".join(f"{n} {unit}" for n, _, unit in parts) or "0 天"
