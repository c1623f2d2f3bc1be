"""Verification codes auth asks the lifecycle to send (auth's SendVerificationCode): worded in
the person's language and sent at once through the same delivery as every notice. Not queued
and not kept: the person is waiting for it, and the code is in no table of this service."""

from __future__ import annotations

from cumulo_lifecycle.adapters.delivery import Delivery, DeliveryFailed
from cumulo_lifecycle.domain import notices as texts
from cumulo_lifecycle.notices import known_locale
from cumulo_platform.errors import InvalidArgument, Unavailable
from cumulo_platform.logging import get_logger
from cumulo_platform.text import mask_contact

log = get_logger(__name__)
CHANNELS = ("email", "sms")
# What a code is for, and the text that says so.
PURPOSES = {"": "verify_contact", "verify": "verify_contact", "reset": "reset_code"}


class VerificationCodes:
    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def send(
        self, *, account_id: str, channel: str, destination: str, code: str, valid_minutes: int, locale: str, purpose: str = ""
    ) -> None:
        if channel not in CHANNELS:
            raise InvalidArgument("channel", "must be email or sms")
        if not destination:
            raise InvalidArgument("destination", "must not be empty")
        if not (code.isascii() and code.isdigit() and 4 <= len(code) <= 10):
            raise InvalidArgument("code", "must be 4 to 10 digits")
        if not 1 <= valid_minutes <= 24 * 60:
            raise InvalidArgument("valid_minutes", "must be between 1 and 1440")
        if purpose not in PURPOSES:
            raise InvalidArgument("purpose", "must be verify or reset")
        rendered = texts.render(PURPOSES[purpose], known_locale(locale), {"code": code, "minutes": str(valid_minutes)})
        try:
            await self.delivery.send(channel, destination, rendered.subject, rendered.body)
        except DeliveryFailed as exc:
            log.warning("verification_code_not_sent", account_id=account_id, channel=channel, to=mask_contact(destination), reason=exc.reason)
            raise Unavailable("the code could not be sent just now; try again in a few minutes", reason="CODE_NOT_SENT") from None
        log.info("verification_code_sent", account_id=account_id, channel=channel, purpose=purpose or "verify", to=mask_contact(destination))
