"""Which addresses of the test session speak TLS: the gateways (registered by the fixtures that
start them, as `make run`'s does, with the session's development CA in CUMULO_CA); services
inside are reached in plaintext, as the gateway reaches them.

`open_channel(target)`: a bare grpc.aio channel to either; `transport_for(target)`: the SDK's
transport for it (`Cumulo(target, transport=transport_for(target))`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from cumulo_sdk.transport import Transport

_TLS_TARGETS: set[str] = set()


def serves_tls(target: str) -> None:
    """`target` is a gateway: calls to it go over TLS."""
    _TLS_TARGETS.add(target)


def transport_for(target: str) -> Transport:
    if target in _TLS_TARGETS:
        return Transport.from_environ()
    return Transport(plaintext=True)


def open_channel(target: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    return transport_for(target).channel(target, options)
