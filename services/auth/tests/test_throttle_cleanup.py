"""Old throttle rows are deleted (unknown logins leave one each); live ones stay."""

import datetime as dt

import sqlalchemy as sa

from cumulo_auth.adapters.tables import login_throttle


async def test_forgotten_throttle_rows_are_deleted_and_live_ones_kept(auth, clock):
    now = clock.now()
    old, live, blocked = "login:old@example.com", "login:live@example.com", "login:blocked@example.com"
    async with auth.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(login_throttle),
            [
                {"scope": "account", "key": old, "failures": 3, "last_failure_at": now - dt.timedelta(hours=2), "blocked_until": None},
                {"scope": "account", "key": live, "failures": 3, "last_failure_at": now - dt.timedelta(minutes=5), "blocked_until": None},
                # Blocked well into the future: kept even though its last failure is old.
                {"scope": "account", "key": blocked, "failures": 30, "last_failure_at": now - dt.timedelta(hours=2),
                 "blocked_until": now + dt.timedelta(hours=1)},
            ],
        )
        await uow.commit()
    assert await auth.app.throttle_cleanup.forget_old_throttles() >= 1
    async with auth.app.db.read() as conn:
        keys = {r.key for r in await conn.execute(sa.select(login_throttle.c.key).where(login_throttle.c.key.in_([old, live, blocked])))}
    assert keys == {live, blocked}


async def test_a_row_with_an_attempt_being_checked_is_kept_until_the_attempt_is_overdue(auth, clock):
    now = clock.now()
    checking, abandoned = "login:checking@example.com", "login:abandoned@example.com"
    old = now - dt.timedelta(hours=2)
    async with auth.app.db.unit_of_work() as uow:
        await uow.execute(
            sa.insert(login_throttle),
            [
                {"scope": "account", "key": checking, "failures": 0, "last_failure_at": old, "pending": 1,
                 "pending_until": now + dt.timedelta(minutes=1)},
                {"scope": "account", "key": abandoned, "failures": 0, "last_failure_at": old, "pending": 1,
                 "pending_until": now - dt.timedelta(minutes=1)},
            ],
        )
        await uow.commit()
    await auth.app.throttle_cleanup.forget_old_throttles()
    async with auth.app.db.read() as conn:
        keys = {r.key for r in await conn.execute(sa.select(login_throttle.c.key).where(login_throttle.c.key.in_([checking, abandoned])))}
    assert keys == {checking}
