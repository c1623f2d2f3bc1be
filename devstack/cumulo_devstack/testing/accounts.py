"""Accounts registered and logged in through the gateway: `People` (the root conftest's
`people` and `module_people` fixtures) and a `Member` with one uploaded photo (`new_member`;
`signed_up_member` for the length of a block)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import pathlib
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.servers import MailCatcher, SmsCatcher
from cumulo_devstack.testing.channels import open_channel
from cumulo_devstack.testing.values import unique_email
from cumulo_devstack.testing.waiting import eventually
from cumulo_platform.identity import OPERATOR
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore

PASSWORD = "correct horse battery staple"
CODE = re.compile(r"\b(\d{8}|\d{6})\b")
# The subjects of the messages with a code, in each language (the lifecycle's texts): to verify
# a contact, and to reset a password.
CODE_SUBJECTS = ("Your cumulo verification code", "您的 cumulo 验证码")
RESET_SUBJECTS = ("Your cumulo password reset code", "您的 cumulo 密码重置验证码")


def _codes(catcher: MailCatcher | SmsCatcher, destination: str, subjects: tuple[str, ...] = CODE_SUBJECTS) -> list[str]:
    """The texts of the messages with a code (of those `subjects`) sent to `destination`, oldest first."""
    if isinstance(catcher, MailCatcher):
        return [m.get_content() for m in catcher.messages() if m["To"] == destination and str(m["Subject"]) in subjects]
    return [m["text"] for m in catcher.messages() if m["to"] == destination and m["text"].split("\n", 1)[0] in subjects]


async def code_sent_to(
    catcher: MailCatcher | SmsCatcher, destination: str, *, after: int = 0, subjects: tuple[str, ...] = CODE_SUBJECTS
) -> str:
    """The code of the latest verification message to `destination` (an address the session's
    mail catcher receives for, or a number its SMS catcher does), once there are more than
    `after`; `subjects=RESET_SUBJECTS` for a password reset's."""

    async def arrived() -> str:
        texts = _codes(catcher, destination, subjects)
        found = CODE.search(texts[-1]) if len(texts) > after else None
        return found.group(1) if found else ""

    return await eventually(arrived, what=f"a verification code for {destination}")


async def verify_contact(client: Cumulo, catcher: MailCatcher | SmsCatcher, channel: str, destination: str) -> None:
    """The real flow: a code sent to the account's "email" or "phone", read where it landed, entered."""
    before = len(_codes(catcher, destination))
    await client.send_verification_code(channel)
    await client.verify_contact(channel, await code_sent_to(catcher, destination, after=before))


async def verify_email(client: Cumulo, mail: MailCatcher, address: str) -> None:
    await verify_contact(client, mail, "email", address)


async def lifecycle_has_contact(lifecycle: Any, address: str) -> None:
    """Once the lifecycle has `address` (a verified e-mail address: it asks auth after the
    verification's event): the notices asked for from then on go there."""
    import sqlalchemy as sa

    from cumulo_lifecycle.adapters.tables import accounts

    async def known() -> bool:
        async with lifecycle.app.db.read() as conn:
            return (await conn.execute(sa.select(accounts.c.account_id).where(accounts.c.email == address))).first() is not None

    await eventually(known, timeout=30, what=f"the lifecycle to have {address}")


@dataclasses.dataclass
class Person:
    """An account that `People` registered and logged in. `client` is its own SDK client (its
    session, which refreshes the access token by itself); `email` is what it logs in with."""

    client: Cumulo
    email: str
    account_id: str

    async def token(self) -> str:
        """A current access token of the person's session."""
        return await self.client.access_token()

    async def metadata(self) -> list[tuple[str, str]]:
        """A call's metadata as this person: the client id and a current access token."""
        return self.client.metadata(await self.token())


class People:
    """Registers and logs in accounts at `target` (the gateway), each with a client of its
    own; `close()` closes them all. Tests take the root conftest's `people` fixture (closed
    after the test) or `module_people` (closed after the module)."""

    def __init__(self, target: str, mail: MailCatcher | None = None) -> None:
        self.target = target
        self.mail = mail  # given: every new account's e-mail address is verified
        self.clients: list[Cumulo] = []

    async def new(self, device_name: str = "test device", *, birth_date: dt.date = dt.date(1990, 5, 17)) -> Person:
        """A newly registered account (an adult unless `birth_date` says otherwise, password
        PASSWORD, locale "en"), logged in once as `device_name`; its e-mail address verified
        when the people have the session's mail."""
        email = unique_email()
        async with Cumulo(self.target) as client:
            await client.register(email=email, password=PASSWORD, birth_date=birth_date, locale="en")
        person = await self.login(email, device_name)
        if self.mail is not None:
            await verify_email(person.client, self.mail, email)
        return person

    async def login(self, email: str, device_name: str = "test device", password: str = PASSWORD, second_factor: str = "") -> Person:
        """A new session of an existing account, with a client of its own."""
        client = Cumulo(self.target)
        self.clients.append(client)
        account = await client.login(email, password, device_name=device_name, second_factor=second_factor)
        return Person(client, email, account.account_id)

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()


@dataclasses.dataclass
class Member:
    """A registered, logged-in account that has uploaded one file."""

    client: Cumulo
    email: str
    account_id: str
    file_id: str
    content: bytes
    uploaded_at: dt.datetime  # just before the upload: its access events are from then on


async def new_member(gateway: str, folder: pathlib.Path, *, locale: str = "en", mail: MailCatcher | None = None) -> Member:
    """Signs up through the gateway (session and pending uploads kept in `folder`), logs in
    (with `mail`, the session's, verifies the e-mail address) and uploads a photo. The caller
    closes `member.client`."""
    client = Cumulo(gateway, store=TokenStore(folder / "credentials.json"), pending_uploads=folder / "uploads.json")
    address = unique_email()
    await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale=locale)
    account = await client.login(address, PASSWORD, device_name="test phone")
    if mail is not None:
        await verify_email(client, mail, address)
    content = secrets.token_bytes(300_000)
    path = folder / "photo.jpg"
    path.write_bytes(content)
    uploaded_at = dt.datetime.now(dt.UTC)
    node = await client.files.upload(path)
    return Member(client, address, account.account_id, node.node_id, content, uploaded_at)


@contextlib.asynccontextmanager
async def signed_up_member(
    gateway: str, folder: pathlib.Path, *, locale: str = "en", mail: MailCatcher | None = None
) -> AsyncIterator[Member]:
    """`new_member`, its client closed when the block is left (a fixture's whole test)."""
    member = await new_member(gateway, folder, locale=locale, mail=mail)
    try:
        yield member
    finally:
        await member.client.close()


async def set_roles(auth_target: str, person: Person, roles: list[str]) -> None:
    """The operator's act (AuthInternalService/SetAccountRoles, straight to auth)."""
    async with open_channel(auth_target, as_=OPERATOR) as channel:
        await auth_pb2_grpc.AuthInternalServiceStub(channel).SetAccountRoles(
            auth_pb2.SetAccountRolesRequest(account_id=person.account_id, roles=roles, reason="trust and safety team", actor="test"), timeout=10
        )


async def new_moderator(people: People, auth_target: str, device_name: str = "moderation desk") -> Person:
    """A new account made a moderator, logged in again so that its token carries the role."""
    person = await people.new(device_name)
    await set_roles(auth_target, person, ["moderator"])
    await person.client.login(person.email, PASSWORD, device_name=device_name)
    return person
