"""Wiring: settings in, a runnable service out. Tests call build() with their own settings
and clock; the process calls it from __main__."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.auth.v1 import auth_pb2_grpc
from cumulo.lifecycle.v1 import lifecycle_pb2_grpc
from cumulo_auth import consumers, jobs
from cumulo_auth.account_changes import AccountChanges
from cumulo_auth.adapters.messages import remote_code_sender
from cumulo_auth.adapters.signing import SigningKeys
from cumulo_auth.adapters.tables import SCHEMA
from cumulo_auth.admin import Admin
from cumulo_auth.api.internal import SERVICE as INTERNAL_SERVICE
from cumulo_auth.api.internal import AuthInternalService
from cumulo_auth.api.public import ANONYMOUS_METHODS, OWN_SESSION_CHECKS, AuthService
from cumulo_auth.api.public import SERVICE as PUBLIC_SERVICE
from cumulo_auth.client_apps import ClientApps
from cumulo_auth.config import DEVELOPMENT_CLIENTS, AuthSettings
from cumulo_auth.contacts import ContactCodes, ContactVerification
from cumulo_auth.guardians import Guardians
from cumulo_auth.issuing import TokenIssuer
from cumulo_auth.live_sessions import LiveSessions
from cumulo_auth.login import Login
from cumulo_auth.purge import AccountPurge
from cumulo_auth.recovery import PasswordResets
from cumulo_auth.registration import Registration
from cumulo_auth.sessions import Sessions
from cumulo_auth.takeout import AuthTakeout
from cumulo_auth.throttling import LoginThrottle
from cumulo_auth.two_step import TwoStep
from cumulo_platform import migrations
from cumulo_platform.account_states import AccountStates
from cumulo_platform.call_limit import CallLimit
from cumulo_platform.clients import ClientRegistry
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.passwords import Passwords
from cumulo_platform.revocations import Revocations
from cumulo_platform.runtime import GrpcService, ServiceRuntime, closer
from cumulo_platform.service import Foundation
from cumulo_platform.takeout import takeout_service
from cumulo_platform.tokens import KeyCache, TokenVerifier

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


def migrate(settings: AuthSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class AuthApp:
    settings: AuthSettings
    db: Database
    runtime: ServiceRuntime
    states: AccountStates
    recorder: LastAccessRecorder
    client_apps: ClientApps
    throttle_cleanup: jobs.ThrottleCleanup
    purge: AccountPurge
    passwords: Passwords
    keys: SigningKeys
    live: LiveSessions
    revocations: Revocations


async def build(settings: AuthSettings, *, clock: Clock | None = None) -> AuthApp:
    base = await Foundation.open(settings.platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    db, clock, states = base.db, base.clock, base.states
    keys = SigningKeys(db, kek=settings.signing_kek, announce=settings.signing_key_announce, token_ttl=settings.access_token_ttl)
    await keys.ensure_active_key()
    passwords = Passwords(
        concurrency=settings.password_hash_workers,
        verify_queue=settings.password_verify_queue,
        new_hash_queue=settings.password_new_hash_queue,
    )
    # One allowance per client address for all the anonymous calls that check a password.
    password_checks = CallLimit(calls=settings.password_checks_per_address, window=settings.password_check_window)
    client_apps = ClientApps(db=db)
    if settings.register_development_clients:
        for client_id, name in DEVELOPMENT_CLIENTS.items():
            await client_apps.register(client_id, name, enable=False)

    throttle = LoginThrottle(db=db, clock=clock, settings=settings)
    issuer = TokenIssuer(keys=keys, clock=clock, settings=settings)
    live = LiveSessions(db, clock)
    codes = ContactCodes(settings, clock)
    two_step = TwoStep(db=db, clock=clock, settings=settings, live=live)
    send_code = remote_code_sender(base.remote("lifecycle", lifecycle_pb2_grpc.LifecycleInternalServiceStub))
    resets = PasswordResets(
        db=db, clock=clock, settings=settings, codes=codes, passwords=passwords, password_checks=password_checks, send=send_code, live=live
    )
    sessions = Sessions(
        db=db, clock=clock, settings=settings, issuer=issuer, states=states, throttle=throttle, passwords=passwords, live=live,
        password_checks=password_checks,
    )
    public = AuthService(
        terms_version=settings.terms_version,
        terms_text=settings.terms_text,
        registration=Registration(db=db, clock=clock, settings=settings, passwords=passwords, password_checks=password_checks),
        login=Login(
            db=db,
            clock=clock,
            time_zone=settings.time_zone,
            passwords=passwords,
            throttle=throttle,
            password_checks=password_checks,
            issuer=issuer,
            states=states,
            two_step=two_step,
        ),
        sessions=sessions,
        changes=AccountChanges(db=db, clock=clock, settings=settings, passwords=passwords, throttle=throttle, sessions=sessions, codes=codes),
        guardians=Guardians(db=db, clock=clock, settings=settings, live=live, passwords=passwords),
        contacts=ContactVerification(db=db, clock=clock, settings=settings, codes=codes, send=send_code, live=live),
        resets=resets,
        two_step=two_step,
    )
    internal = AuthInternalService(keys=keys, client_apps=client_apps, admin=Admin(db=db, clock=clock, time_zone=settings.time_zone, live=live, revocations=base.revocations))
    throttle_cleanup = jobs.ThrottleCleanup(db=db, clock=clock, forget_after=settings.throttle_forget_after)
    purge = AccountPurge(db=db, clock=clock, login_key=settings.login_key, live=live)

    # Auth verifies tokens and client apps from its own tables; other services ask auth.
    interceptor = base.interceptor(
        verifier=TokenVerifier(KeyCache(keys.verification_keys), clock=clock),
        clients=ClientRegistry(client_apps.registered, ttl=settings.platform.client_cache_ttl_seconds),
        anonymous_methods=ANONYMOUS_METHODS,
        own_session_checks=OWN_SESSION_CHECKS,
    )
    runtime = base.runtime(
        services=[
            GrpcService(PUBLIC_SERVICE, public, auth_pb2_grpc.add_AuthServiceServicer_to_server),
            GrpcService(INTERNAL_SERVICE, internal, auth_pb2_grpc.add_AuthInternalServiceServicer_to_server),
            takeout_service(AuthTakeout(db).parts),
        ],
        interceptor=interceptor,
        jobs=[*jobs.jobs(throttle_cleanup, keys, live), *consumers.consumers(base, purge)],
        cleanups=[resets.close, closer(passwords.close)],
    )
    return AuthApp(
        settings=settings,
        db=db,
        runtime=runtime,
        states=states,
        recorder=base.recorder,
        client_apps=client_apps,
        throttle_cleanup=throttle_cleanup,
        purge=purge,
        passwords=passwords,
        keys=keys,
        live=live,
        revocations=base.revocations,
    )
