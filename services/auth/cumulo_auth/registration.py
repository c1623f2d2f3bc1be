"""New accounts: adults register themselves; an adult's session creates a minor's account
with the guardian's consent."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cumulo.events.v1 import events_pb2
from cumulo_auth.adapters import accounts as account_table
from cumulo_auth.adapters.tables import accounts
from cumulo_auth.config import AuthSettings
from cumulo_auth.domain import rules
from cumulo_auth.domain.accounts import LOCALES, local_date, view
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import AlreadyExists, InvalidArgument, PermissionDenied
from cumulo_platform.grpc_convert import timestamp
from cumulo_platform.passwords import Passwords
from cumulo_platform.tokens import Principal


def _contacts(email: str, phone: str) -> tuple[str | None, str | None]:
    email_n = rules.normalize_email(email) if email.strip() else None
    phone_n = rules.normalize_phone(phone) if phone.strip() else None
    if email_n is None and phone_n is None:
        raise InvalidArgument("email", "give an e-mail address or a phone number (or both)")
    return email_n, phone_n


class Registration:
    def __init__(self, *, db: Database, clock: Clock, settings: AuthSettings, passwords: Passwords) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.passwords = passwords

    def _today(self) -> dt.date:
        return local_date(self.clock.now(), self.settings.time_zone)

    async def register(
        self,
        *,
        email: str,
        phone: str,
        password: str,
        birth_date: tuple[int, int, int],
        accepted_terms_version: str,
        locale: str = "",
    ) -> dict[str, Any]:
        locale = locale or LOCALES[0]
        if locale not in LOCALES:
            raise InvalidArgument("locale", f"must be one of {', '.join(LOCALES)}")
        email_n, phone_n = _contacts(email, phone)
        born = rules.check_birth_date(*birth_date, today=self._today())
        if accepted_terms_version != self.settings.terms_version:
            raise InvalidArgument(
                "accepted_terms_version",
                f"must be the current terms version {self.settings.terms_version}",
                reason="TERMS_NOT_ACCEPTED",
            )
        if rules.is_minor(born, self._today()):
            raise PermissionDenied(
                "people under 18 cannot register themselves; a guardian creates the account",
                reason="GUARDIAN_REQUIRED",
            )
        normalized = rules.check_password(password, contacts=(email_n or "", phone_n or ""))
        return await self._create_account(
            email=email_n, phone=phone_n, password=normalized, born=born, guardian=None, locale=locale
        )

    async def create_minor_account(
        self,
        guardian: Principal,
        *,
        email: str,
        phone: str,
        password: str,
        birth_date: tuple[int, int, int],
        guardian_consent: bool,
    ) -> dict[str, Any]:
        email_n, phone_n = _contacts(email, phone)
        born = rules.check_birth_date(*birth_date, today=self._today())
        if not guardian_consent:
            raise InvalidArgument("guardian_consent", "the guardian must consent to create a minor's account")
        if not rules.is_minor(born, self._today()):
            raise InvalidArgument("birth_date", "this person is an adult and registers themselves")
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, uuid.UUID(guardian.account_id))
            if rules.is_minor(row.birth_date, self._today()):
                raise PermissionDenied("only an adult can create a minor's account", reason="GUARDIAN_MUST_BE_ADULT")
        normalized = rules.check_password(password, contacts=(email_n or "", phone_n or ""))
        return await self._create_account(
            email=email_n, phone=phone_n, password=normalized, born=born, guardian=row.account_id, locale=row.locale
        )

    async def _create_account(
        self, *, email: str | None, phone: str | None, password: str, born: dt.date, guardian: uuid.UUID | None, locale: str
    ) -> dict[str, Any]:
        """A guardian's account makes a minor's: the stored flag says how it was created."""
        # Refuse a taken contact before paying for a hash; the insert below still guards races.
        async with self.db.read() as conn:
            for field, value in (("email", email), ("phone", phone)):
                if value is not None and (await conn.execute(sa.select(sa.literal(1)).where(accounts.c[field] == value))).first():
                    raise AlreadyExists(f"{field}: an account with this {field} exists", reason="ACCOUNT_EXISTS", metadata={"field": field})
        password_hash = await self.passwords.hash(password)
        now = self.clock.now()
        account_id = uuid.uuid4()
        minor = guardian is not None
        async with self.db.unit_of_work() as uow:
            try:
                row = (
                    await uow.execute(
                        sa.insert(accounts)
                        .values(
                            account_id=account_id,
                            email=email,
                            phone=phone,
                            password_hash=password_hash,
                            birth_date=born,
                            minor=minor,
                            guardian_account_id=guardian,
                            guardian_consent_at=now if guardian else None,
                            terms_version=self.settings.terms_version,
                            terms_accepted_at=now,
                            created_at=now,
                            updated_at=now,
                            locale=locale,
                        )
                        .returning(*accounts.c)
                    )
                ).one()
            except IntegrityError as exc:
                raise account_table.contact_clash(exc, reason="ACCOUNT_EXISTS") from None
            uow.emit(
                "account.created",
                events_pb2.AccountCreated(
                    account_id=str(account_id),
                    minor=minor,
                    guardian_account_id=str(guardian) if guardian else "",
                    created_at=timestamp(now),
                ),
                account_id=str(account_id),
            )
            await uow.commit()
        return view(row, now=self.clock.now(), time_zone=self.settings.time_zone)
