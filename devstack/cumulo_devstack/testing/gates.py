"""The test each service keeps that every method of its public services is gated."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from cumulo_devstack.testing.calls import expect_error
from cumulo_devstack.testing.methods import invoke, method_id, method_path, with_client_id
from cumulo_devstack.testing.tokens import forged_access_token

# even where no token is needed), and on the methods that need a token, a call without one
# and with a forged one. The whole matrix of bad tokens is tried once, on the platform's
# interceptor (libs/cumulo_platform/tests/test_call_door.py).
GATE_EXPECTED = {
    "no-client-id": (grpc.StatusCode.PERMISSION_DENIED, "CLIENT_NOT_AUTHORIZED"),
    "no-token": (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING"),
    "forged-token": (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID"),
}


def public_services(module: Any) -> list[ServiceDescriptor]:
    """The services of a generated *_pb2 module that clients call: all but the
    …InternalService ones (reached only inside the cluster, with no client id or token)."""
    return [s for s in module.DESCRIPTOR.services_by_name.values() if not s.name.endswith("InternalService")]


def public_methods(module: Any) -> dict[str, MethodDescriptor]:
    """Every method of the module's public services, by "Service/Method" (method_id)."""
    return {method_id(m): m for service in public_services(module) for m in service.methods}


def gate_cases(services: Sequence[ServiceDescriptor], anonymous: Iterable[str] = ()) -> list[Any]:
    """Parameters for a test parametrised "method, case" with assert_gated: every method of
    `services` with "no-client-id", and each one not in `anonymous` (the service's declared
    anonymous methods, as paths "/package.Service/Method") also with "no-token" and
    "forged-token". A method added to the proto is tried without anyone listing it."""
    methods = [m for service in services for m in service.methods]
    anonymous = set(anonymous)
    unknown = anonymous - {method_path(m) for m in methods}
    assert not unknown, f"anonymous methods that the services do not have: {sorted(unknown)}"
    return [
        pytest.param(method, case, id=f"{method_id(method)}-{case}")
        for method in methods
        for case in GATE_EXPECTED
        if case == "no-client-id" or method_path(method) not in anonymous
    ]


async def assert_gated(target: str, method: MethodDescriptor, case: str, signing_key: tuple[str, bytes]) -> None:
    """A call of `method` straight to the service at `target` is refused as GATE_EXPECTED
    says for `case`. The request is empty (a client stream sends no message: one written
    while the server refuses the call can turn the refusal into grpc's own INTERNAL); the
    door is checked before the request is read."""
    metadata = {
        "no-client-id": [],
        "no-token": with_client_id(),
        "forged-token": with_client_id(forged_access_token(signing_key)),
    }[case]
    code, reason = GATE_EXPECTED[case]
    request: Any = [] if method.client_streaming else message_factory.GetMessageClass(method.input_type)()
    await expect_error(invoke(target, method, request, metadata, timeout=10), code, reason=reason)
