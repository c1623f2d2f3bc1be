"""Two-step sign-in: after the password, a code from an authenticator app (TOTP, RFC 6238: six
digits, a new one every 30 seconds), or one of ten single-use recovery codes for when the phone
is gone. An account that can locate and wipe phones deserves more than a password.

Turning it on takes the password entered lately, then a code from the app (proof that the app
has the secret); the secret is kept sealed with auth's key-encryption key (bound to the
account), the recovery codes as keyed hashes. A code is good once: a step already used, or an
older one, is refused (a code seen over someone's shoulder is spent). Login asks for it; a
refresh does not (the session proved it at its login). Wrong codes count as wrong passwords
in the login throttle."""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import Any

import pyotp
import sqlalchemy as sa

from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts, recovery_codes, second_factors
from cumulo_auth.config import AuthSettings
from cumulo_auth.contacts import as_digits, entered_code
from cumulo_auth.live_sessions import LiveSessions
from cumulo_platform import secrets as sealing
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database, UnitOfWork
from cumulo_platform.errors import FailedPrecondition, InvalidArgument
from cumulo_platform.tokens import Principal, require_recent_password

STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODES = 10
ISSUER = "cumulo"
# Recovery codes: ten characters of an alphabet without look-alikes, shown as xxxxx-xxxxx.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _normal_recovery(entered: str) -> str:
    raw = "".join(entered.lower().split()).replace("-", "")
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == 10 else ""


class TwoStep:
    def __init__(self, *, db: Database, clock: Clock, settings: AuthSettings, live: LiveSessions) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.live = live

    def _label(self, account_id: uuid.UUID) -> str:
        return f"totp-secret:{account_id}"

    def _recovery_digest(self, account_id: uuid.UUID, code: str) -> bytes:
        return sealing.keyed_hash(self.settings.login_key, f"recovery-code\x00{account_id}\x00{code}")

    def _secret(self, account_id: uuid.UUID, row: Any) -> str:
        return sealing.unseal(self.settings.signing_kek, self._label(account_id), row.secret_sealed, variable="signing-kek").decode()

    def _step_of(self, secret: str, entered: str, after: int) -> int | None:
        """The step whose code `entered` is (this one, or one either side for a clock a little
        off), if later than `after`."""
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
        now = self.clock.now().timestamp()
        for offset in (0, -1, 1):
            step = int(now // STEP_SECONDS) + offset
            if step > after and hmac.compare_digest(totp.at(step * STEP_SECONDS), entered):
                return step
        return None

    async def begin(self, principal: Principal) -> tuple[str, str]:
        """A new secret, pending until `confirm`: (the secret in base32, the otpauth:// URI an
        authenticator app takes, as a QR code or typed)."""
        require_recent_password(
            principal, now=self.clock.now(), within=self.settings.contact_change_password_window, action="turning on two-step sign-in"
        )
        account_id = uuid.UUID(principal.account_id)
        secret = pyotp.random_base32()
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_id, lock=True)
            if row.two_step_at is not None:
                raise FailedPrecondition("two-step sign-in is on already; turn it off first to move it to another app", reason="TWO_STEP_ALREADY_ON")
            sealed = sealing.seal(self.settings.signing_kek, self._label(account_id), secret.encode())
            await uow.execute(sa.delete(second_factors).where(second_factors.c.account_id == account_id))
            await uow.execute(sa.insert(second_factors).values(account_id=account_id, secret_sealed=sealed, last_step=0, created_at=now))
            name = row.email or row.phone or str(account_id)
            await uow.commit()
        return secret, pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=name, issuer_name=ISSUER)

    async def confirm(self, principal: Principal, code: str) -> list[str]:
        """The app's code proves it has the secret: two-step sign-in is on. Returns the
        recovery codes, shown this once."""
        entered = entered_code(code, DIGITS, "your authenticator app shows")
        account_id = uuid.UUID(principal.account_id)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_id, lock=True)
            if row.two_step_at is not None:
                raise FailedPrecondition("two-step sign-in is on already", reason="TWO_STEP_ALREADY_ON")
            pending = (await uow.execute(sa.select(second_factors).where(second_factors.c.account_id == account_id).with_for_update())).first()
            if pending is None:
                raise FailedPrecondition("turn two-step sign-in on first (BeginTwoStep)", reason="TWO_STEP_NOT_BEGUN")
            step = self._step_of(self._secret(account_id, pending), entered, pending.last_step)
            if step is None:
                raise InvalidArgument("code", "is not the code your authenticator app shows now", reason="CODE_WRONG")
            codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
            await uow.execute(sa.delete(recovery_codes).where(recovery_codes.c.account_id == account_id))
            await uow.execute(
                sa.insert(recovery_codes), [{"account_id": account_id, "code_digest": self._recovery_digest(account_id, c)} for c in codes]
            )
            await uow.execute(sa.update(second_factors).where(second_factors.c.account_id == account_id).values(last_step=step))
            await uow.execute(sa.update(accounts).where(accounts.c.account_id == account_id).values(two_step_at=now, updated_at=now))
            self.live.forget_after_commit(uow, account_id)
            await uow.commit()
        return codes

    async def disable(self, principal: Principal, code: str) -> None:
        """Off again: the password entered lately and a code (the app's or a recovery code)."""
        require_recent_password(
            principal, now=self.clock.now(), within=self.settings.contact_change_password_window, action="turning off two-step sign-in"
        )
        account_id = uuid.UUID(principal.account_id)
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, account_id, lock=True)
            if row.two_step_at is None:
                return  # off already: a retry after a lost answer
            if not await self.spend(uow, account_id, code):
                await uow.commit()
                raise InvalidArgument("code", "is neither the code your app shows now nor an unused recovery code", reason="CODE_WRONG")
            await self.forget(uow, account_id)
            await uow.execute(sa.update(accounts).where(accounts.c.account_id == account_id).values(two_step_at=None, updated_at=now))
            self.live.forget_after_commit(uow, account_id)
            await uow.commit()

    async def spend(self, uow: UnitOfWork, account_id: uuid.UUID, code: str) -> bool:
        """Whether `code` is the app's code now (a step not used before) or an unused recovery
        code; spends it. For the login, and to turn the step off."""
        factor = (await uow.execute(sa.select(second_factors).where(second_factors.c.account_id == account_id).with_for_update())).first()
        if factor is None:
            return False
        entered = as_digits(code, DIGITS)
        if entered is not None:
            step = self._step_of(self._secret(account_id, factor), entered, factor.last_step)
            if step is None:
                return False
            await uow.execute(sa.update(second_factors).where(second_factors.c.account_id == account_id).values(last_step=step))
            return True
        recovery = _normal_recovery(code)
        if not recovery:
            return False
        used = await uow.execute(
            sa.update(recovery_codes)
            .where(
                recovery_codes.c.account_id == account_id,
                recovery_codes.c.code_digest == self._recovery_digest(account_id, recovery),
                recovery_codes.c.used_at.is_(None),
            )
            .values(used_at=self.clock.now())
        )
        return bool(used.rowcount)

    async def forget(self, uow: UnitOfWork, account_id: uuid.UUID) -> None:
        await uow.execute(sa.delete(recovery_codes).where(recovery_codes.c.account_id == account_id))
        await uow.execute(sa.delete(second_factors).where(second_factors.c.account_id == account_id))

    async def recovery_codes_left(self, account_id: uuid.UUID) -> int:
        async with self.db.read() as conn:
            return int(
                (
                    await conn.execute(
                        sa.select(sa.func.count()).where(recovery_codes.c.account_id == account_id, recovery_codes.c.used_at.is_(None))
                    )
                ).scalar_one()
            )
