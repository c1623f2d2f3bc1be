"""PostgreSQL crashes under a running service: callers get UNAVAILABLE (retry), not INTERNAL;
nothing acknowledged is lost; the service recovers by itself when the database is back."""

import asyncio
import datetime as dt
import pathlib
import shutil
import tempfile
import uuid

import grpc
import pytest

from cumulo_auth import bootstrap
from cumulo_auth.config import AuthSettings
from cumulo_devstack.servers import EmbeddedPostgres
from cumulo_devstack.testing import start_service, transport_for
from cumulo_sdk import Cumulo, CumuloRpcError

PASSWORD = "correct horse battery staple"


@pytest.fixture
def own_postgres():
    """A PostgreSQL of this test's own, so crashing it harms no other test."""
    root = pathlib.Path(tempfile.mkdtemp(prefix="cumulo-pg-outage-"))
    root.chmod(0o755)
    postgres = EmbeddedPostgres(root / "postgres")
    postgres.start()
    try:
        yield postgres
    finally:
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_database_crash_gives_unavailable_and_service_recovers(infra, own_postgres):
    environ = infra.service_environ(DATABASE_URL=own_postgres.ensure_database("cumulo"))
    app = await bootstrap.build(AuthSettings.from_env(environ))
    port = await start_service(app.runtime)
    try:
        async with Cumulo(f"127.0.0.1:{port}", transport=transport_for(f"127.0.0.1:{port}")) as client:
            email = f"outage-{uuid.uuid4().hex[:8]}@example.com"
            account = await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 1, 1))
            await client.login(email, PASSWORD)

            own_postgres.stop(mode="immediate")  # a crash: no shutdown checkpoint
            with pytest.raises(CumuloRpcError) as during:
                await client.whoami()
            assert during.value.code == grpc.StatusCode.UNAVAILABLE
            assert during.value.reason == "UNAVAILABLE"
            with pytest.raises(CumuloRpcError) as login_during:
                await client.login(email, PASSWORD)
            assert login_during.value.code == grpc.StatusCode.UNAVAILABLE

            own_postgres.start()
            # The acknowledged registration survived the crash, and the pool reconnects.
            me = None
            for _ in range(60):  # bounded: about 15 s
                try:
                    me = await client.whoami()
                    break
                except CumuloRpcError as err:
                    assert err.code == grpc.StatusCode.UNAVAILABLE
                    await asyncio.sleep(0.25)
            assert me is not None, "the service did not recover after PostgreSQL came back"
            assert me.account.account_id == account.account_id
            await client.login(email, PASSWORD)
    finally:
        await app.runtime.stop()
