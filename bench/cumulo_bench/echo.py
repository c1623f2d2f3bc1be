"""A bare grpc.aio echo server: the ceiling our service layers are measured against.

`python -m cumulo_bench.echo PORT` is the bare server; with `--internal` it serves the echo as
an internal method behind the platform's interceptor, in plaintext with no caller check, and
with `--internal --identity DIR` behind the same interceptor over mutual TLS with the
identity `blob` of DIR, checking the caller against an allow-list: the pair measures what
service identity costs an internal call."""

from __future__ import annotations

import argparse
import pathlib

import grpc
import uvloop

METHOD = "/cumulo.bench.Echo/Echo"
INTERNAL_METHOD = "/cumulo.bench.EchoInternalService/Echo"
INTERNAL_CALLER = "lifecycle"  # the bench calls as this identity; the server is `blob`


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return request


def _interceptor(check_callers: bool) -> grpc.aio.ServerInterceptor:
    from cumulo_platform.clients import ClientRegistry
    from cumulo_platform.interceptors import CallInterceptor
    from cumulo_platform.tokens import KeyCache, TokenVerifier

    async def no_keys() -> dict[str, bytes]:
        return {}

    async def no_clients(client_id: str) -> bool:
        return False

    allowed = frozenset({INTERNAL_CALLER})
    return CallInterceptor(
        verifier=TokenVerifier(KeyCache(no_keys)), clients=ClientRegistry(no_clients),
        callers=(lambda method: allowed) if check_callers else (lambda method: None),
    )


async def serve(port: int, *, internal: bool = False, identities: pathlib.Path | None = None) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)], interceptors=[_interceptor(identities is not None)] if internal else [])
    service = "cumulo.bench.EchoInternalService" if internal else "cumulo.bench.Echo"
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}),))
    if identities is not None:
        from cumulo_platform.identity import Identity

        server.add_secure_port(f"127.0.0.1:{port}", Identity.load(identities, "blob").server_credentials())
    else:
        server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="cumulo_bench.echo")
    parser.add_argument("port", type=int)
    parser.add_argument("--internal", action="store_true")
    parser.add_argument("--identity", type=pathlib.Path)
    args = parser.parse_args()
    uvloop.run(serve(args.port, internal=args.internal, identities=args.identity))
