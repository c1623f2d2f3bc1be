"""Wiring: settings in, a runnable service out. Tests call build() with their own settings
and clock; the process calls it from __main__."""

from __future__ import annotations

import dataclasses
import pathlib

from cumulo.auth.v1 import auth_pb2_grpc
from cumulo_auth.adapters.signing import SigningKeys
from cumulo_auth.adapters.tables import SCHEMA
from cumulo_auth.api.internal import SERVICE as INTERNAL_SERVICE
from cumulo_auth.api.internal import AuthInternalService
from cumulo_auth.api.public import ANONYMOUS_METHODS, AuthService
from cumulo_auth.api.public import SERVICE as PUBLIC_SERVICE
from cumulo_auth.config import DEVELOPMENT_CLIENTS, AuthSettings
from cumulo_auth.handlers import AuthHandlers
from cumulo_platform import migrations
from cumulo_platform.account_states import AccountStates
from cumulo_platform.clients import ClientRegistry
from cumulo_platform.clock import Clock, SystemClock
from cumulo_platform.db import Database
from cumulo_platform.events import EventConsumer
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.passwords import Passwords
from cumulo_platform.runtime import GrpcService, ServiceRuntime, closer, periodic
from cumulo_platform.service import Foundation
from cumulo_platform.tokens import KeyCache, TokenVerifier

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"


def migrate(settings: AuthSettings) -> None:
    migrations.upgrade(settings.platform.database_url, SCHEMA, MIGRATIONS)


@dataclasses.dataclass
class AuthApp:
    settings: AuthSettings
    db: Database
    handlers: AuthHandlers
    runtime: ServiceRuntime
    states: AccountStates
    recorder: LastAccessRecorder


async def build(settings: AuthSettings, *, clock: Clock | None = None) -> AuthApp:
    base = await Foundation.open(settings.platform, schema=SCHEMA, migrations_dir=MIGRATIONS, clock=clock or SystemClock())
    db = base.db
    keys = SigningKeys(db)
    await keys.ensure_active_key()
    passwords = Passwords()
    handlers = AuthHandlers(db=db, settings=settings, passwords=passwords, keys=keys, clock=base.clock, states=base.states)
    if settings.register_development_clients:
        for client_id, name in DEVELOPMENT_CLIENTS.items():
            await handlers.register_client_app(client_id, name, enable=False)
    # Auth verifies tokens and client apps from its own tables; other services ask auth.
    interceptor = base.interceptor(
        verifier=TokenVerifier(KeyCache(keys.verification_keys), clock=base.clock),
        clients=ClientRegistry(handlers.client_registered, ttl=settings.platform.client_cache_ttl_seconds),
        anonymous_methods=ANONYMOUS_METHODS,
    )
    runtime = base.runtime(
        services=[
            GrpcService(PUBLIC_SERVICE, AuthService(handlers), auth_pb2_grpc.add_AuthServiceServicer_to_server),
            GrpcService(
                INTERNAL_SERVICE, AuthInternalService(handlers), auth_pb2_grpc.add_AuthInternalServiceServicer_to_server
            ),
        ],
        interceptor=interceptor,
        jobs=[
            periodic(handlers.forget_old_throttles, every=600.0),
            EventConsumer(db, base.nats, durable="auth-purge", event_types=["purge.requested"], handler=handlers.purge).run,
        ],
        cleanups=[closer(passwords.close)],
    )
    return AuthApp(settings=settings, db=db, handlers=handlers, runtime=runtime, recorder=base.recorder, states=base.states)
