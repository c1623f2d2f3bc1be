"""A guardian's access to a minor's account ends when the minor comes of age: at local midnight
of the 18th birthday, in the operator's time zone (cumulo_platform.ages, the lifecycle's zone),
by itself, in every service that honours the link (the device locator). The adult then sees who
had access, since and until when, and can revoke it; a minor cannot. The clocks of auth and the
locator are moved together (tokens are issued and judged by the same time); each test puts
them back."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import grpc
import pytest
import sqlalchemy as sa

from cumulo.auth.v1 import auth_pb2
from cumulo_devstack.testing import eventually, expect_error, unique_email
from cumulo_devstack.testing.cli import run_command
from cumulo_locator.adapters.tables import guardians
from cumulo_platform import ages
from cumulo_sdk import CumuloRpcError

MINOR_PASSWORD = "purple monkey dishwasher"


def born_to_come_of_age_in_days(days: int, time_zone) -> dt.date:
    """A birth date whose 18th birthday is `days` local days from today (never 29 February,
    whose coming of age is its own case)."""
    day = dt.datetime.now(dt.UTC).astimezone(time_zone).date() + dt.timedelta(days=days)
    if (day.month, day.day) == (2, 29):
        day += dt.timedelta(days=1)
    return day.replace(year=day.year - ages.ADULT_AGE)


async def create_minor(guardian, people, born: dt.date):
    email = unique_email()
    created = await guardian.client.call(
        guardian.client.auth.CreateMinorAccount,
        auth_pb2.CreateMinorAccountRequest(
            email=email, password=MINOR_PASSWORD, guardian_consent=True,
            birth_date=auth_pb2.Date(year=born.year, month=born.month, day=born.day),
        ),
    )
    assert created.account.minor
    return await people.login(email, "child's phone", MINOR_PASSWORD)


async def guardian_sees(guardian, minor) -> str:
    """"OK" when the guardian may list the minor's devices, else the refusal's reason."""
    try:
        await guardian.client.devices.list(minor.account_id)
    except CumuloRpcError as err:
        return err.reason
    return "OK"


async def link_row(locator, minor):
    async with locator.app.db.read() as conn:
        return (await conn.execute(sa.select(guardians).where(guardians.c.minor_account_id == sa.literal(minor.account_id, sa.Uuid)))).first()


async def list_guardians(person) -> list[auth_pb2.Guardian]:
    return list((await person.client.call(person.client.auth.ListGuardians, auth_pb2.ListGuardiansRequest())).guardians)


@pytest.fixture
def both_clocks(auth, locator):
    before = (auth.clock.offset, locator.clock.offset)
    yield auth.clock, locator.clock
    auth.clock.offset, locator.clock.offset = before


def move(clocks, by: dt.timedelta) -> None:
    for clock in clocks:
        clock.advance(by)


async def test_the_guardians_access_ends_at_local_midnight_of_the_18th_birthday(people, auth, locator, both_clocks):
    zone = auth.app.settings.time_zone
    born = born_to_come_of_age_in_days(2, zone)
    adulthood = ages.comes_of_age(born, zone)
    guardian = await people.new("parent's phone")
    minor = await create_minor(guardian, people, born)

    async def locator_knows() -> bool:
        return await guardian_sees(guardian, minor) == "OK"

    await eventually(locator_knows, timeout=30, what="the locator to learn the minor's guardian")
    row = await link_row(locator, minor)
    assert (row.until, row.revoked_at) == (adulthood, None)
    (link,) = await list_guardians(minor)
    assert (link.guardian_account_id, link.login, link.active) == (guardian.account_id, guardian.email, True)
    assert link.until.ToDatetime(dt.UTC) == adulthood and not link.HasField("revoked_at")

    # A minute before the birthday's midnight (in the operator's zone): still a minor.
    move(both_clocks, adulthood - dt.timedelta(minutes=1) - auth.clock.now())
    assert await guardian_sees(guardian, minor) == "OK"
    await expect_error(
        minor.client.call(minor.client.auth.RevokeGuardian, auth_pb2.RevokeGuardianRequest(guardian_account_id=guardian.account_id)),
        grpc.StatusCode.PERMISSION_DENIED, reason="MINOR_CANNOT_REVOKE_GUARDIAN",
    )
    # The birthday's midnight: the access has ended, with nobody having done anything.
    move(both_clocks, adulthood - auth.clock.now())
    assert await guardian_sees(guardian, minor) == "GUARDIAN_ACCESS_ENDED"
    for attempt in (
        guardian.client.devices.history("any-device", account_id=minor.account_id),
        guardian.client.devices.locate("any-device", minor.account_id),
    ):
        await expect_error(attempt, grpc.StatusCode.PERMISSION_DENIED, reason="GUARDIAN_ACCESS_ENDED")
    (link,) = await list_guardians(minor)
    assert (link.guardian_account_id, link.active) == (guardian.account_id, False)
    assert (await minor.client.call(minor.client.auth.GetAccount, auth_pb2.GetAccountRequest())).account.minor is False

    # The adult revokes it for the record: idempotent, announced, and the locator keeps it.
    revoked = await invoke_revoke(minor, guardian.account_id)
    again = await invoke_revoke(minor, guardian.account_id)
    assert revoked.revoked_at == again.revoked_at and not revoked.active

    async def locator_recorded() -> bool:
        return (await link_row(locator, minor)).revoked_at == revoked.revoked_at.ToDatetime(dt.UTC)

    await eventually(locator_recorded, timeout=30, what="the locator to record the revocation")


async def invoke_revoke(person, guardian_id: str) -> auth_pb2.Guardian:
    answer = await person.client.call(person.client.auth.RevokeGuardian, auth_pb2.RevokeGuardianRequest(guardian_account_id=guardian_id))
    return answer.guardian


def test_someone_born_on_29_february_comes_of_age_on_1_march_in_a_common_year():
    zone = zoneinfo.ZoneInfo("Asia/Shanghai")
    assert ages.coming_of_age_day(dt.date(2008, 2, 29)) == dt.date(2026, 3, 1)
    assert ages.coming_of_age_day(dt.date(2010, 2, 28)) == dt.date(2028, 2, 28)
    assert ages.comes_of_age(dt.date(2008, 2, 29), zone) == dt.datetime(2026, 2, 28, 16, tzinfo=dt.UTC)
    assert ages.is_minor(dt.date(2008, 2, 29), dt.date(2026, 2, 28))
    assert not ages.is_minor(dt.date(2008, 2, 29), dt.date(2026, 3, 1))


async def test_revoking_a_guardian_is_refused_for_other_ids_and_bad_input(people):
    adult = await people.new("adult")
    other = await people.new("other")
    assert await list_guardians(adult) == []
    await expect_error(invoke_revoke(adult, other.account_id), grpc.StatusCode.NOT_FOUND, reason="GUARDIAN_NOT_FOUND")
    await expect_error(invoke_revoke(adult, "not-an-id"), grpc.StatusCode.INVALID_ARGUMENT, field="guardian_account_id")


async def test_someone_else_cannot_see_or_end_a_minors_guardian_link(people, auth):
    """ListGuardians and RevokeGuardian act on the caller's own account only: an intruder naming
    a real, active guardian of someone else's child finds nothing, and the link holds."""
    guardian = await people.new("parent")
    minor = await create_minor(guardian, people, born_to_come_of_age_in_days(3650, auth.app.settings.time_zone))
    intruder = await people.new("intruder")
    assert [(g.guardian_account_id, g.active) for g in await list_guardians(minor)] == [(guardian.account_id, True)]
    assert await list_guardians(intruder) == []
    await expect_error(invoke_revoke(intruder, guardian.account_id), grpc.StatusCode.NOT_FOUND, reason="GUARDIAN_NOT_FOUND")
    assert [(g.guardian_account_id, g.active) for g in await list_guardians(minor)] == [(guardian.account_id, True)]
    assert await guardian_sees(guardian, minor) == "OK"


async def test_a_guardian_cannot_revoke_or_see_the_link_from_their_own_side(people, auth):
    """The link is the minor's to see: the guardian's own list is empty, and the guardian's
    RevokeGuardian names nobody of theirs."""
    guardian = await people.new("parent")
    minor = await create_minor(guardian, people, born_to_come_of_age_in_days(400, auth.app.settings.time_zone))
    assert await list_guardians(guardian) == []
    await expect_error(invoke_revoke(guardian, guardian.account_id), grpc.StatusCode.NOT_FOUND, reason="GUARDIAN_NOT_FOUND")
    (link,) = await list_guardians(minor)
    assert link.active and link.guardian_account_id == guardian.account_id



async def test_the_cli_lists_the_guardian_and_refuses_a_minors_revocation(people, auth, gateway, tmp_path):
    guardian = await people.new("parent")
    born = born_to_come_of_age_in_days(400, auth.app.settings.time_zone)
    minor = await create_minor(guardian, people, born)
    home = tmp_path / "minor"

    async def cumulo(*args: str, stdin: str = "") -> tuple[int, str, str]:
        result = await run_command("cumulo", "--gateway", gateway, *args, environ={"CUMULO_HOME": str(home)}, stdin=stdin)
        return result.returncode, result.stdout, result.stderr

    code, _, err = await cumulo("login", minor.email, stdin=MINOR_PASSWORD + "\n")
    assert code == 0, err
    code, out, err = await cumulo("account", "guardians")
    assert code == 0, err
    assert guardian.account_id in out and guardian.email in out and "yes" in out
    code, out, err = await cumulo("account", "guardians", "--json")
    assert code == 0, err
    (shown,) = json.loads(out)["guardians"]
    assert shown["guardian_account_id"] == guardian.account_id and shown["active"] is True
    code, _, err = await cumulo("account", "revoke-guardian", guardian.account_id)
    assert code == 1 and "MINOR_CANNOT_REVOKE_GUARDIAN" in err
