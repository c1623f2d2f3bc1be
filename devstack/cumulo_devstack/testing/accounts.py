"""Accounts registered and logged in through the gateway: `People` (the root conftest's
`people` and `module_people` fixtures) and a `Member` with one uploaded photo (`new_member`;
`signed_up_member` for the length of a block)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import pathlib
import secrets
from collections.abc import AsyncIterator

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.testing.channels import open_channel
from cumulo_devstack.testing.values import unique_email
from cumulo_platform.identity import OPERATOR
from cumulo_sdk import Cumulo
from cumulo_sdk.client import TokenStore

PASSWORD = "correct horse battery staple"


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

    def __init__(self, target: str) -> None:
        self.target = target
        self.clients: list[Cumulo] = []

    async def new(self, device_name: str = "test device", *, birth_date: dt.date = dt.date(1990, 5, 17)) -> Person:
        """A newly registered account (an adult unless `birth_date` says otherwise, password
        PASSWORD, locale "en"), logged in once as `device_name`."""
        email = unique_email()
        async with Cumulo(self.target) as client:
            await client.register(email=email, password=PASSWORD, birth_date=birth_date, locale="en")
        return await self.login(email, device_name)

    async def login(self, email: str, device_name: str = "test device", password: str = PASSWORD) -> Person:
        """A new session of an existing account, with a client of its own."""
        client = Cumulo(self.target)
        self.clients.append(client)
        account = await client.login(email, password, device_name=device_name)
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


async def new_member(gateway: str, folder: pathlib.Path, *, locale: str = "en") -> Member:
    """Signs up through the gateway (session and pending uploads kept in `folder`), logs in
    and uploads a photo. The caller closes `member.client`."""
    client = Cumulo(gateway, store=TokenStore(folder / "credentials.json"), pending_uploads=folder / "uploads.json")
    address = unique_email()
    await client.register(email=address, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale=locale)
    account = await client.login(address, PASSWORD, device_name="test phone")
    content = secrets.token_bytes(300_000)
    path = folder / "photo.jpg"
    path.write_bytes(content)
    uploaded_at = dt.datetime.now(dt.UTC)
    node = await client.files.upload(path)
    return Member(client, address, account.account_id, node.node_id, content, uploaded_at)


@contextlib.asynccontextmanager
async def signed_up_member(gateway: str, folder: pathlib.Path, *, locale: str = "en") -> AsyncIterator[Member]:
    """`new_member`, its client closed when the block is left (a fixture's whole test)."""
    member = await new_member(gateway, folder, locale=locale)
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
