"""Which addresses of the test session speak what: the gateways speak TLS (registered by the
fixtures that start them, as `make run`'s does, with the session's development CA in
CUMULO_CA); the services inside speak mutual TLS with the internal CA's identities
(CUMULO_IDENTITY_DIR, which the session sets as `make run` does), and a test reaches one as
the gateway does — or as the identity it names (`as_`: "operator", "moderation" ...).

`open_channel(target)`: a bare grpc.aio channel to either; `transport_for(target)`: the SDK's
transport for it (`Cumulo(target, transport=transport_for(target))`)."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

import grpc

from cumulo_platform.identity import GATEWAY, OPERATOR, Identity
from cumulo_platform.trust import INTERNAL_CALLERS
from cumulo_sdk.transport import Transport

_TLS_TARGETS: set[str] = set()
_SERVICE_TARGETS: dict[str, str] = {}  # address -> the cumulo service that listens there


def serves_tls(target: str) -> None:
    """`target` is a gateway: calls to it go over TLS."""
    _TLS_TARGETS.add(target)


def serves_service(target: str, service: str) -> None:
    """`target` is the cumulo service `service`: calls to it go over mutual TLS."""
    _SERVICE_TARGETS[target] = service


@functools.cache
def identity(name: str, folder: str | None = None) -> Identity:
    """The identity `name` of the session (CUMULO_IDENTITY_DIR unless `folder` is given)."""
    return Identity.load(folder or os.environ["CUMULO_IDENTITY_DIR"], name)


@dataclasses.dataclass(frozen=True)
class IdentityTransport(Transport):
    """The SDK's transport to a service, as one identity of the internal CA."""

    caller: Identity | None = None
    service: str = ""

    def channel(self, target: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
        assert self.caller is not None
        return self.caller.channel(target, self.service, options)

    def fetches_by_url(self) -> bool:
        return False  # a service's signed URLs are for the gateway's clients: inside, it streams


def transport_for(target: str, as_: str = GATEWAY) -> Transport:
    if target in _TLS_TARGETS:
        return Transport.from_environ()
    service = _SERVICE_TARGETS.get(target)
    if service is None:  # a test's own server
        return Transport(plaintext=True)
    return IdentityTransport(caller=identity(as_), service=service)


def open_channel(target: str, options: Sequence[tuple[str, Any]] = (), as_: str = GATEWAY) -> grpc.aio.Channel:
    return transport_for(target, as_).channel(target, options)


class _Paths:
    """Stands in for a channel to learn a stub's method paths."""

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def _add(self, path: str, *args: Any, **kwargs: Any) -> None:
        self.paths[path.rsplit("/", 1)[1]] = path

    unary_unary = unary_stream = stream_unary = stream_stream = _add


class AllowedCaller:
    """A stub of an internal service whose every method is called as an identity the
    allow-list (cumulo_platform.trust) lets call it — the operator when it may, else the first
    service named: for tests of what the methods do. What the allow-list refuses is tested
    with explicit identities (tests/test_service_identity.py).

        async with allowed_caller(auth.target, auth_pb2_grpc.AuthInternalServiceStub) as internal:
            await internal.SetAccountStatus(...)"""

    def __init__(self, target: str, stub_class: Any) -> None:
        recorder = _Paths()
        stub_class(recorder)
        self._paths = recorder.paths
        self._target = target
        self._stub_class = stub_class
        self._stubs: dict[str, Any] = {}
        self._channels: list[grpc.aio.Channel] = []

    def __getattr__(self, method: str) -> Any:
        path = self._paths.get(method)
        if path is None:
            raise AttributeError(method)
        callers = INTERNAL_CALLERS.get(path, frozenset())
        assert callers, f"nobody may call {path}"
        name = OPERATOR if OPERATOR in callers else sorted(callers)[0]
        if name not in self._stubs:
            channel = open_channel(self._target, as_=name)
            self._channels.append(channel)
            self._stubs[name] = self._stub_class(channel)
        return getattr(self._stubs[name], method)

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    async def __aenter__(self) -> AllowedCaller:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def allowed_caller(target: str, stub_class: Any) -> AllowedCaller:
    return AllowedCaller(target, stub_class)


async def start_service(runtime: Any) -> int:
    """A service's runtime (cumulo_platform.runtime.ServiceRuntime) started in the test's
    process, its address registered as that service's (mutual TLS): its port."""
    port: int = await runtime.start()
    serves_service(f"127.0.0.1:{port}", runtime.name)
    return port
