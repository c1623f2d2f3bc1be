"""Any method (unary or streaming), by its descriptor or path, called in its shape with the
metadata of the test's choosing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor

from cumulo_devstack.testing.channels import open_channel
from cumulo_sdk import CumuloRpcError


def with_client_id(token: str | None = None, client_id: str = "cumulo-cli") -> list[tuple[str, str]]:
    """A call's metadata: the client id, and `token` as a bearer token if given."""
    metadata = [("x-cumulo-client-id", client_id)]
    if token is not None:
        metadata.append(("authorization", f"Bearer {token}"))
    return metadata


def rpc_method(method: MethodDescriptor | str) -> MethodDescriptor:
    """The descriptor of a method given as one or by its path ("/cumulo.sync.v1.SyncService/Push")."""
    if isinstance(method, MethodDescriptor):
        return method
    service, _, name = method.lstrip("/").partition("/")
    return descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]


def method_path(method: MethodDescriptor) -> str:
    """The method's path on the wire, as services list their anonymous methods."""
    return f"/{method.containing_service.full_name}/{method.name}"


def method_id(method: MethodDescriptor) -> str:
    """"Service/Method", for test ids and tables."""
    return f"{method.containing_service.name}/{method.name}"


async def call_in_shape(
    multicallable: Any, method: MethodDescriptor, request: Any, *, metadata: Sequence[tuple[str, str]] | None, timeout: float,
    messages: str = "first",
) -> Any:
    """Calls `multicallable` (a stub's method) as `method`'s shape wants: a client stream
    sends `request` (one message or a list of them). The answer; for a server stream its
    first message (`messages="first"`: streams such as watches never end) or every message
    as a list (`messages="all"`). A failure is raised as a CumuloRpcError."""
    try:
        if method.client_streaming:
            items = list(request) if isinstance(request, (list, tuple)) else [request]

            async def stream() -> AsyncIterator[Any]:
                for item in items:
                    yield item

            request = stream()
        if not method.server_streaming:
            return await multicallable(request, metadata=metadata, timeout=timeout)
        call = multicallable(request, metadata=metadata, timeout=timeout)
        if messages == "all":
            return [message async for message in call]
        try:
            first = await asyncio.wait_for(call.read(), timeout)
        finally:
            call.cancel()
        assert first is not grpc.aio.EOF, f"{method.full_name} ended without a message"
        return first
    except grpc.aio.AioRpcError as exc:
        raise CumuloRpcError.from_rpc_error(exc) from None


async def invoke(
    target: str, method: MethodDescriptor | str, request: Any, metadata: Sequence[tuple[str, str]] | None = None, *,
    timeout: float = 20, messages: str = "first",
) -> Any:
    """One call of any method to `target` through a bare channel: nothing is added to
    `metadata` (no client id unless it has one). See call_in_shape for the shapes."""
    method = rpc_method(method)
    shapes = {
        (False, False): "unary_unary", (False, True): "unary_stream", (True, False): "stream_unary", (True, True): "stream_stream",
    }
    async with open_channel(target) as channel:
        multicallable = getattr(channel, shapes[(method.client_streaming, method.server_streaming)])(
            method_path(method),
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(method.output_type).FromString,
        )
        return await call_in_shape(multicallable, method, request, metadata=metadata, timeout=timeout, messages=messages)
