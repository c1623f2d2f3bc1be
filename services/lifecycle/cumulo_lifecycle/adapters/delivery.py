"""Where notices go: e-mail over SMTP (aiosmtplib) and SMS through a provider's webhook
(an HTTP POST of {"to", "text"}). Failures raise DeliveryFailed with a short reason that
never carries the message, the address or a credential."""

from __future__ import annotations

import asyncio
import email.generator
import email.message
import email.policy
import email.utils
import io

import aiohttp
import aiosmtplib

from cumulo_lifecycle.config import LifecycleSettings

# Headers are not folded: a subject stays on one line (up to RFC 5322's 998 characters), so
# that `grep '^Subject'` shows it whole, the date at its end included. Bodies are 7-bit (a
# non-ASCII text is encoded), as the bytes are handed over without asking for 8BITMIME.
UNFOLDED = email.policy.default.clone(max_line_length=998, cte_type="7bit")


def mail_bytes(sender: str, to: str, subject: str, body: str) -> bytes:
    """The message as it goes over the wire (CRLF line ends, headers unfolded)."""
    message = email.message.EmailMessage(policy=UNFOLDED)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain="cumulo")
    message.set_content(body)
    with io.BytesIO() as out:
        email.generator.BytesGenerator(out, policy=UNFOLDED.clone(linesep="\r\n")).flatten(message)
        return out.getvalue()


class DeliveryFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Delivery:
    def __init__(self, settings: LifecycleSettings) -> None:
        self.settings = settings
        self._http: aiohttp.ClientSession | None = None

    async def send(self, channel: str, to: str, subject: str, body: str) -> None:
        channel = channel.removeprefix("guardian_")  # a minor's guardian: by the same means
        try:
            if channel == "email":
                await self._email(to, subject, body)
            elif channel == "sms":
                await self._sms(to, f"{subject}\n{body}")
            else:
                raise DeliveryFailed(f"unknown channel {channel}", permanent=True)
        finally:
            # aiosmtplib waits with asyncio.wait_for, which on Python 3.11 can return (or fail)
            # instead of raising a cancellation that arrived meanwhile (CPython gh-86296): a
            # stopping service must stop, and the notice stays pending for the next start.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError

    async def _email(self, to: str, subject: str, body: str) -> None:
        s = self.settings
        if not s.smtp_host:
            # Permanent, as for SMS: retrying would only keep the address and the text for hours.
            raise DeliveryFailed("no SMTP server configured (CUMULO_LIFECYCLE_SMTP_HOST)", permanent=True)
        try:
            await aiosmtplib.send(
                mail_bytes(s.mail_from, to, subject, body),
                sender=email.utils.parseaddr(s.mail_from)[1] or s.mail_from,
                recipients=[to],
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username or None,
                password=s.smtp_password or None,
                start_tls=s.smtp_starttls,
                timeout=15,
            )
        except aiosmtplib.SMTPRecipientsRefused:
            raise DeliveryFailed("the mail server refused the address", permanent=True) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"mail server: {type(exc).__name__}") from None

    async def _sms(self, to: str, text: str) -> None:
        if not self.settings.sms_webhook_url:
            # Permanent: retrying would only keep the number and the text for hours.
            raise DeliveryFailed("no SMS provider configured (CUMULO_LIFECYCLE_SMS_WEBHOOK_URL)", permanent=True)
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        try:
            async with self._http.post(self.settings.sms_webhook_url, json={"to": to, "text": text}) as response:
                if response.status >= 500 or response.status == 429:
                    raise DeliveryFailed(f"SMS provider answered {response.status}")
                if response.status >= 400:
                    raise DeliveryFailed(f"SMS provider refused the message ({response.status})", permanent=True)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryFailed(f"SMS provider: {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
