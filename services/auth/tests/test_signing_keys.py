"""Token-signing keys at rest and across a rotation, on an auth of the test's own (its clock
moves only when told): private keys are sealed under the key-encryption key from configuration
(a copy of the table signs nothing; a key stored before sealing is sealed at start); a rotation
announces the new key at once and signs with it only after the announcement period, tokens of
the old key verify until they expire, and then the old key retires. A verifier elsewhere (a
service's key cache) learns the new key before its first token arrives. Only the operator may
rotate, through `cumulo-admin auth rotate-signing-key`."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_auth.adapters.signing import unseal
from cumulo_auth.adapters.tables import signing_keys
from cumulo_devstack.testing import open_channel
from cumulo_devstack.testing.cli import run_command
from cumulo_platform.errors import Unauthenticated
from cumulo_platform.identity import GATEWAY
from cumulo_platform.secrets import NotSealed
from cumulo_platform.tokens import KeyCache, TokenVerifier, access_claims, sign

TTL = dt.timedelta(minutes=15)


def token(app, at: dt.datetime) -> str:
    signed, _ = app.keys.sign_access_token(
        account_id=uuid.uuid4(), session_id=uuid.uuid4(), client_id="cumulo-cli", minor=False, roles=[], issued_at=at, ttl=TTL
    )
    return signed


async def rows(app) -> list:
    async with app.db.read() as conn:
        return list((await conn.execute(sa.select(signing_keys).order_by(signing_keys.c.signs_from))).all())


def kid(signed: str) -> str:
    header = signed.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


async def test_private_keys_are_sealed_and_open_only_with_the_configured_key(start_own_auth):
    async with start_own_auth() as own:
        (row,) = await rows(own.app)
        public, stored = bytes(row.public_key), bytes(row.private_key)
        assert stored[:4] == b"kek1" and len(stored) > 32
        private = unseal(own.app.settings.signing_kek, row.key_id, public, stored)
        assert private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == public
        with pytest.raises(NotSealed, match="signing-kek.key"):
            unseal(b"\x00" * 32, row.key_id, public, stored)
        with pytest.raises(NotSealed):  # bound to its key id: moved to another row, it does not open
            unseal(own.app.settings.signing_kek, "another-key", public, stored)
        with pytest.raises(NotSealed):  # and to its public half: a swapped public key does not open it
            unseal(own.app.settings.signing_kek, row.key_id, Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), stored)


async def test_a_key_written_into_the_table_without_the_kek_is_never_used_nor_handed_out(start_own_auth):
    """Someone who can write auth's table but has not the key-encryption key: a row with their
    own public key (and anything as the private half), or a raw private key as keys were
    stored before sealing. Neither is handed to the services nor signs, now or after a
    restart; and a restart finding no key it can prove makes a new one."""
    async with start_own_auth() as own:
        app, clock = own.app, own.clock
        genuine = app.keys.active_key_id
        planted = Ed25519PrivateKey.generate()
        raw = Ed25519PrivateKey.generate()
        async with app.db.unit_of_work() as uow:
            for key_id, private_half, key in (("k-planted", b"kek1" + b"\x00" * 60, planted), ("k-raw", raw.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()), raw)):
                await uow.execute(
                    sa.insert(signing_keys).values(
                        key_id=key_id, private_key=private_half, public_key=key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
                        created_at=clock.now(), signs_from=clock.now() - dt.timedelta(seconds=1),
                    )
                )
            await uow.commit()
        assert [k for k, _ in await app.keys.public_keys()] == [genuine]
        await app.keys.refresh()
        assert app.keys.active_key_id == genuine
        await app.keys.ensure_active_key()  # as at a restart
        assert app.keys.active_key_id == genuine
        retired = {r.key_id: r.retired_at for r in await rows(app)}
        assert retired["k-planted"] is not None and retired["k-raw"] is not None and retired[genuine] is None
        # Only unproven keys left: a restart makes a new one rather than trusting them.
        async with app.db.unit_of_work() as uow:
            await uow.execute(sa.update(signing_keys).where(signing_keys.c.key_id == genuine).values(public_key=planted.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)))
            await uow.commit()
        await app.keys.ensure_active_key()
        assert app.keys.active_key_id not in (genuine, "k-planted", "k-raw")
        assert [k for k, _ in await app.keys.public_keys()] == [app.keys.active_key_id]


async def test_a_rotation_announces_then_signs_and_the_old_key_verifies_until_its_tokens_expire(start_own_auth):
    async with start_own_auth(CUMULO_AUTH_SIGNING_KEY_ANNOUNCE="PT2M") as own:
        app, clock = own.app, own.clock
        old_kid = app.keys.active_key_id
        # A service elsewhere: its key cache asks auth's internal API, as blob's does.
        async with open_channel(own.target, as_="blob") as channel:
            stub = auth_pb2_grpc.AuthInternalServiceStub(channel)

            async def fetch() -> dict[str, bytes]:
                answer = await stub.GetSigningKeys(auth_pb2.GetSigningKeysRequest(), timeout=10)
                return {k.key_id: k.public_key for k in answer.keys}

            elsewhere = TokenVerifier(KeyCache(fetch, max_age=0.0), clock=clock)
            before = token(app, clock.now())
            assert (await elsewhere.verify(before)).account_id

            added, keys = await app.keys.rotate()
            assert added.signs_from == clock.now() + dt.timedelta(minutes=2)
            assert [k.key_id for k in keys] == [added.key_id, old_kid]
            await app.keys.refresh()
            assert app.keys.active_key_id == old_kid  # announced, not signing yet
            await elsewhere.verify(token(app, clock.now()))  # a look-up: the cache renews itself
            await elsewhere.verify(token(app, clock.now()))

            clock.advance(dt.timedelta(minutes=2))
            await app.keys.refresh()
            assert app.keys.active_key_id == added.key_id
            after = token(app, clock.now())
            assert kid(after) == added.key_id and kid(before) == old_kid
            assert (await elsewhere.verify(after)).account_id
            # The old key still verifies its tokens (a verifier that never saw this token checks the signature).
            assert (await TokenVerifier(KeyCache(fetch), clock=clock).verify(before)).account_id

            # Once the new key has signed for longer than a token lives, the old one retires.
            clock.advance(TTL + dt.timedelta(minutes=1))
            await app.keys.refresh()
            retired = {r.key_id: r.retired_at for r in await rows(app)}
            assert retired[old_kid] is not None and retired[added.key_id] is None
            assert [k for k, _ in await app.keys.public_keys()] == [added.key_id]
            fresh = TokenVerifier(KeyCache(fetch), clock=clock)
            with pytest.raises(Unauthenticated):
                await fresh.verify(await token_signed_by_retired(app, old_kid, clock))
            assert (await fresh.verify(token(app, clock.now()))).account_id


async def token_signed_by_retired(app, old_kid: str, clock) -> str:
    """A token the retired key signs now (as a thief of that key would): refused."""
    (row,) = [r for r in await rows(app) if r.key_id == old_kid]
    private = unseal(app.settings.signing_kek, old_kid, bytes(row.public_key), bytes(row.private_key))
    claims = access_claims(
        account_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()), client_id="cumulo-cli", minor=False, roles=[],
        issued_at=clock.now(), expires_at=clock.now() + TTL,
    )
    return sign(claims, old_kid, private)


async def test_only_the_operator_rotates_and_cumulo_admin_does_it(start_own_auth):
    async with start_own_auth() as own:
        for who in (GATEWAY, "moderation", "blob"):
            async with open_channel(own.target, as_=who) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await auth_pb2_grpc.AuthInternalServiceStub(channel).RotateSigningKey(auth_pb2.RotateSigningKeyRequest(), timeout=10)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED and "CALLER_NOT_ALLOWED" in str(refused.value.trailing_metadata())
        assert len(await rows(own.app)) == 1
        result = await run_command("cumulo-admin", "auth", "rotate-signing-key", environ={"CUMULO_AUTH_TARGET": own.target})
        assert result.returncode == 0, result.stderr
        assert "new signing key" in result.stdout and "signs from" in result.stdout
        result = await run_command("cumulo-admin", "auth", "rotate-signing-key", "--json", environ={"CUMULO_AUTH_TARGET": own.target})
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)["keys"]) == 3
        assert len(await rows(own.app)) == 3
