"""New accounts: adults register themselves; an adult's session creates a minor's account
with the guardian's consent.

Each new account, and each CheckNewPassword, spends from its client address's allowance of
password checks (cumulo_auth.domain.password_work.PasswordWork): a registration counts as four
checks, so one address makes at most 15 accounts a minute by default however many callers it
has; the 64 MiB hash is then admitted by cumulo_platform.passwords, whose new hashes can never
take the worker logins keep.

A taken e-mail address or phone number is answered ALREADY_EXISTS (ACCOUNT_EXISTS, naming the
field): a person who registers twice must be told to log in instead, and without a
verification mail or text before the account exists the product has no answer that is both
uniform and useful. What keeps this from being an enumeration oracle: the answer comes only
after the allowance was spent (at most 15 probes a minute per address, as for real
registrations) and after the same hash a new account pays, so it is neither cheaper nor faster
than a registration. CheckNewPassword never looks at the accounts, and Login answers an unknown
login as a wrong password, after a decoy hash."""

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
from cumulo_auth.domain.accounts import LOCALES, view
from cumulo_auth.domain.password_work import PasswordWork
from cumulo_auth.guardians import created_event_until
from cumulo_platform import ages
from cumulo_platform.ages import local_date
from cumulo_platform.call_limit import CallLimit, spend
from cumulo_platform.clock import Clock
from cumulo_platform.db import Database
from cumulo_platform.errors import InvalidArgument, PermissionDenied
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
    def __init__(
        self, *, db: Database, clock: Clock, settings: AuthSettings, passwords: Passwords, password_checks: CallLimit
    ) -> None:
        self.db = db
        self.clock = clock
        self.settings = settings
        self.passwords = passwords
        self.password_checks = password_checks

    def check_new_password(self, password: str, *, email: str = "", phone: str = "", client_network: str) -> None:
        """The password rule alone, before anything else of a registration is known to be
        right: a contact that is not (yet) valid is simply not compared. Anyone may ask, so
        each client address may ask only so often."""
        spend(
            self.password_checks, client_network, self.clock.now(), PasswordWork.CHECK,
            what="passwords checked from this address", reason="PASSWORD_CHECK_RATE_LIMITED",
        )
        contacts = []
        for value, normalize in ((email, rules.normalize_email), (phone, rules.normalize_phone)):
            try:
                contacts.append(normalize(value) if value.strip() else "")
            except InvalidArgument:
                contacts.append("")
        rules.check_password(password, contacts=tuple(contacts))

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
        client_network: str,
        client_id: str = "",
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
        if ages.is_minor(born, self._today()):
            raise PermissionDenied(
                "people under 18 cannot register themselves; a guardian creates the account",
                reason="GUARDIAN_REQUIRED",
            )
        normalized = rules.check_password(password, contacts=(email_n or "", phone_n or ""))
        self._spend_new_account(client_network)
        return await self._create_account(
            email=email_n, phone=phone_n, password=normalized, born=born, guardian=None, locale=locale, client_id=client_id
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
        client_network: str,
        client_id: str = "",
    ) -> dict[str, Any]:
        email_n, phone_n = _contacts(email, phone)
        born = rules.check_birth_date(*birth_date, today=self._today())
        if not guardian_consent:
            raise InvalidArgument("guardian_consent", "the guardian must consent to create a minor's account")
        if not ages.is_minor(born, self._today()):
            raise InvalidArgument("birth_date", "this person is an adult and registers themselves")
        async with self.db.unit_of_work() as uow:
            row = await account_table.load(uow, uuid.UUID(guardian.account_id))
            if ages.is_minor(row.birth_date, self._today()):
                raise PermissionDenied("only an adult can create a minor's account", reason="GUARDIAN_MUST_BE_ADULT")
        normalized = rules.check_password(password, contacts=(email_n or "", phone_n or ""))
        self._spend_new_account(client_network)
        return await self._create_account(
            email=email_n, phone=phone_n, password=normalized, born=born, guardian=row.account_id, locale=row.locale, client_id=client_id
        )

    def _spend_new_account(self, client_network: str) -> None:
        """After the free checks of the input (a typo costs nothing), before the hash."""
        spend(
            self.password_checks, client_network, self.clock.now(), PasswordWork.NEW_ACCOUNT,
            what="new accounts from this address", reason="REGISTRATION_RATE_LIMITED",
        )

    async def _create_account(
        self, *, email: str | None, phone: str | None, password: str, born: dt.date, guardian: uuid.UUID | None, locale: str,
        client_id: str = "",
    ) -> dict[str, Any]:
        """A guardian's account makes a minor's: the stored flag says how it was created.

        The hash comes first, and a taken contact is found by the insert itself: a taken
        e-mail address costs the caller as much, and takes as long, as a new account."""
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
            await account_table.record_terms(uow, account_id, self.settings.terms_version, now=now, client_id=client_id, accepted_by=guardian)
            uow.emit(
                "account.created",
                events_pb2.AccountCreated(
                    account_id=str(account_id),
                    minor=minor,
                    guardian_account_id=str(guardian) if guardian else "",
                    created_at=timestamp(now),
                    guardian_until=created_event_until(born, self.settings) if guardian else None,
                ),
                account_id=str(account_id),
            )
            await uow.commit()
        return view(row, now=self.clock.now(), time_zone=self.settings.time_zone)
