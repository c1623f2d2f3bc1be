"""Fixtures of the `cumulo-admin lifecycle` tests (test_admin_*.py), against the session's real
lifecycle and auth (their internal APIs), on accounts registered through the gateway.

- `admin` (CumuloAdmin): runs `cumulo-admin --lifecycle T --auth T ARGS` in-process, reads its
  output, and reads the lifecycle's rows it reports on.
- `sign_up`: a new account the lifecycle knows, its login applied; `person`: one for the test;
  `frozen`: a frozen one for the module.
- `ages` (cumulo_devstack.testing.Ages, per module): ages one account on purpose, one row at a
  time, as services/lifecycle/tests do; the session's sweeper only runs when a test sweeps.
- `internal`: the lifecycle's internal API, to compare with and to clean up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_devstack.servers import SmsCatcher
from cumulo_devstack.stack import Infra
from cumulo_devstack.testing import PASSWORD, Ages, People, Person, allowed_caller, eventually, unique_phone, verify_contact
from cumulo_devstack.testing.cli import run_command
from cumulo_lifecycle.adapters.tables import accounts, transitions
from cumulo_sdk import Cumulo

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+"  # a time as people read it: local, with its zone
REPORT_LINES = [
    r"active +(\d+)",
    r"frozen +(\d+)",
    r"deleting +(\d+)",
    r"deleted +(\d+)",
    r"held +(\d+)",
    r"freezes due +next 7 days: (\d+) +next 30 days: (\d+)",
    r"deletions due +next 7 days: (\d+) +next 30 days: (\d+)",
    r"stuck purges +(\d+)",
]


@dataclasses.dataclass
class CumuloAdmin:
    """`cumulo-admin` against the session's lifecycle and auth, and what its output says."""

    lifecycle: Any
    auth: Any
    UUID = UUID
    TIME = TIME

    async def __call__(self, *args: str, environ: Mapping[str, str] | None = None, targets: bool = True) -> tuple[int, str, str]:
        """`cumulo-admin [--lifecycle T --auth T] ARGS...` in-process: (exit code, stdout, stderr)."""
        where = ["--lifecycle", self.lifecycle.target, "--auth", self.auth.target] if targets else []
        result = await run_command("cumulo-admin", *where, *args, environ=environ or {})
        return result.returncode, result.stdout, result.stderr

    async def row(self, account_id: str) -> Any:
        """The lifecycle's row of the account, with `held` asked of its legal holds."""
        held = self.lifecycle.app.legal_holds.is_held(accounts.c.account_id).label("held")
        async with self.lifecycle.app.db.read() as conn:
            return (await conn.execute(sa.select(accounts, held).where(accounts.c.account_id == uuid.UUID(account_id)))).first()

    async def transitions(self, account_id: str) -> list[Any]:
        async with self.lifecycle.app.db.read() as conn:
            return list(
                await conn.execute(
                    sa.select(transitions).where(transitions.c.account_id == uuid.UUID(account_id)).order_by(transitions.c.transition_id)
                )
            )

    @staticmethod
    def field(out: str, name: str) -> str:
        """The value of one `name   value` line of `status` / `hold` output."""
        found = re.search(rf"^{re.escape(name)} +(.*)$", out, re.MULTILINE)
        assert found, f"no '{name}' line in:\n{out}"
        return found.group(1).strip()

    @staticmethod
    def shown(when: dt.datetime) -> str:
        """A time as the output shows it (console.when): this machine's local time, its zone."""
        return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")

    @staticmethod
    def listed(out: str) -> dict[str, str]:
        """account id -> state, from `list` output (every line must be an account line)."""
        found = {}
        for line in out.splitlines():
            match = re.fullmatch(rf"({UUID})  (\w+) +last access ({TIME}|-)  next ({TIME}|-)(  HELD)?", line)
            assert match, f"unexpected line: {line!r}"
            found[match.group(1)] = match.group(2)
        return found

    @staticmethod
    def report(out: str) -> tuple[int, ...]:
        """The numbers of `report` output, in the order of GetReportResponse's fields."""
        lines = out.splitlines()
        assert len(lines) == len(REPORT_LINES), out
        numbers: list[int] = []
        for line, pattern in zip(lines, REPORT_LINES):
            match = re.fullmatch(pattern, line)
            assert match, f"{line!r} is not {pattern!r}"
            numbers += [int(n) for n in match.groups()]
        return tuple(numbers)


@pytest.fixture
def admin(lifecycle: Any, auth: Any) -> CumuloAdmin:
    return CumuloAdmin(lifecycle, auth)


async def _sign_up(people: People, admin: CumuloAdmin, *, phone: bool = False, sms: SmsCatcher | None = None) -> Person:
    """An account registered and logged in through the gateway, its contact verified, once the
    lifecycle knows it and has applied its login (no later use of it is on its way). With
    `phone` (and the session's `sms`), it logs in with a phone number (`person.email` holds it)."""
    if phone:
        assert sms is not None
        login = unique_phone()
        async with Cumulo(people.target) as client:
            await client.register(phone=login, password=PASSWORD, birth_date=dt.date(1990, 5, 17), locale="en")
        person = await people.login(login)
        await verify_contact(person.client, sms, "phone", login)
    else:
        person = await people.new()

    async def known() -> Any:
        row = await admin.row(person.account_id)
        if row is None or row.created_at is None or (row.phone if phone else row.email) != person.email:
            return None
        return row if row.last_access_at > row.created_at else None

    await eventually(known, what="the lifecycle to know the account and its login")
    return person


@pytest.fixture
def sign_up(people: People, admin: Any, sms: SmsCatcher) -> Callable[..., Awaitable[Person]]:
    return lambda phone=False: _sign_up(people, admin, phone=phone, sms=sms)


@pytest.fixture
async def person(people: People, admin: Any) -> Person:
    return await _sign_up(people, admin)


@pytest.fixture(scope="module")
def ages(lifecycle: Any, auth: Any, blob: Any, infra: Infra) -> Ages:
    """Ages one account on purpose (only its row changes; the next sweep acts on it)."""
    return Ages(lifecycle, (auth, blob), infra.nats.url)


@pytest.fixture(scope="module")
async def frozen(ages: Ages, module_people: People, lifecycle: Any, auth: Any) -> Person:
    admin = CumuloAdmin(lifecycle, auth)
    found = await _sign_up(module_people, admin)
    await ages.unused_for_a_year(found.account_id)
    await lifecycle.app.cases.sweeper.sweep()
    assert (await admin.row(found.account_id)).state == "frozen"
    return found


@pytest.fixture
async def internal(lifecycle: Any) -> AsyncIterator[lifecycle_pb2_grpc.LifecycleInternalServiceStub]:
    async with allowed_caller(lifecycle.target, lifecycle_pb2_grpc.LifecycleInternalServiceStub) as stub:
        yield stub
