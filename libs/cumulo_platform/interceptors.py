"""One server interceptor for every cumulo service, in this order per call:

1. the call's context, made once (`CallInfo`: method, client, request id from the gateway's
   `x-request-id` or a new one made only when a line is logged or the call fails), which
   every log line written during the call carries (cumulo_platform.logging); the caller's identity (its mTLS certificate, `cumulo_platform.identity`) checked against
   the method's allow-list (`cumulo_platform.trust`);
2. client app check (`x-cumulo-client-id` must name a registered app) on public services;
3. access-token verification (local, cached keys) unless the method is anonymous;
4. the account gate (lifecycle state) and the last-access mark for authenticated calls (a
   stream's end is marked too);
5. domain errors mapped to gRPC status with google.rpc details; anything unexpected becomes a
   generic INTERNAL carrying the request id, and is logged with its traceback;
6. a log line per call with its duration and code where it tells something: failed or slow
   calls at info, the rest at debug (`CUMULO_LOG_CALLS=all`: every call at info);
7. with tracing on, a span per call under the trace context it came with (`cumulo_platform.tracing`).

Internal services (names ending in `InternalService`) are reached only inside the cluster,
by the identities their allow-list names, and are never routed by the gateway; health and
reflection pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, NoReturn

import grpc

from cumulo_platform.clients import ClientRegistry
from cumulo_platform.errors import (
    STATUS_DETAILS_KEY,
    CumuloError,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    internal_status,
    is_outage,
)
from cumulo_platform.identity import caller
from cumulo_platform.last_access import LastAccessRecorder
from cumulo_platform.logging import CURRENT_CALL, debug_enabled, get_logger
from cumulo_platform.metrics import Metrics
from cumulo_platform.tokens import Principal, TokenVerifier, within_scope
from cumulo_platform.tracing import Tracing, end_call_span
from cumulo_platform.trust import allowed_callers

CLIENT_ID_HEADER = "x-cumulo-client-id"
REQUEST_ID_HEADER = "x-request-id"
FORWARDED_FOR_HEADER = "x-forwarded-for"

log = get_logger("cumulo.rpc")


class CallInfo:
    """What the interceptor learned of one call, made once per call and filled in as the call
    is admitted (caller, principal). What most calls never need is worked out only when asked
    for: the request id (a new one only when none came and something logs or fails) and the
    client's address (throttles and notices ask for it)."""

    __slots__ = ("method", "client_id", "principal", "bearer_token", "caller", "_request_id", "_client_address", "_metadata", "_context", "_hops")

    def __init__(
        self, method: str, *, request_id: str = "", client_id: str = "", client_address: str | None = None,
        principal: Principal | None = None, bearer_token: str | None = None, caller: str | None = None,
        metadata: dict[str, str] | None = None, context: grpc.aio.ServicerContext | None = None,
        trusted_proxy_hops: int = 1,
    ) -> None:
        self.method = method
        self.client_id = client_id
        self.principal = principal
        self.bearer_token = bearer_token
        self.caller = caller  # the identity that made the call (the gateway for public calls)
        self._request_id = request_id
        self._client_address = client_address
        self._metadata = metadata
        self._context = context
        self._hops = trusted_proxy_hops

    @property
    def request_id(self) -> str:
        if not self._request_id:
            self._request_id = uuid.uuid4().hex
        return self._request_id

    @property
    def client_address(self) -> str:
        if self._client_address is None:
            peer = (self._context.peer() if self._context is not None else "") or ""
            self._client_address = _client_address(self._metadata or {}, peer, self._hops)
        return self._client_address

    @property
    def client_network(self) -> str:
        """The client's address as per-address limits count it (see `client_network`)."""
        return client_network(self.client_address)

    def log_fields(self) -> dict[str, Any]:
        """What every log line written during the call carries (cumulo_platform.logging)."""
        fields = {"request_id": self.request_id, "method": self.method}
        if self.principal is not None:
            fields["account_id"] = self.principal.account_id
        return fields

    def __repr__(self) -> str:
        return f"CallInfo({self.method!r}, request_id={self._request_id!r}, caller={self.caller!r})"


# The call being served, as every log line written during it sees it (cumulo_platform.logging).
_current_call: contextvars.ContextVar[CallInfo] = CURRENT_CALL
_current_recorder: contextvars.ContextVar[LastAccessRecorder | None] = contextvars.ContextVar("cumulo_recorder")


def current_call() -> CallInfo:
    return _current_call.get()


def mark_used(account_id: str) -> None:
    """For calls that prove who the caller is without an access token (log in, refresh):
    they are uses of the account too."""
    recorder = _current_recorder.get(None)
    if recorder is not None:
        recorder.mark(account_id)


def current_principal() -> Principal:
    """The authenticated caller; only valid inside a method that requires a token."""
    principal = _current_call.get().principal
    if principal is None:
        raise Unauthenticated("this call needs an access token", reason="TOKEN_MISSING")
    return principal


def audit_actor(said: str) -> str:
    """Who did it, for an audit trail: the authenticated caller (the service identity its
    certificate proved, `CallInfo.caller`), then whom it says it acts for ("operator: ann",
    "moderation: moderator 1f…"). What a request says is never the actor alone. A call that
    proved no identity (a test's plaintext door) is recorded by what it says."""
    said = said.strip()
    if not said:
        raise InvalidArgument("actor", "name who decided; it is kept for the audit trail")
    who = _current_call.get().caller
    return f"{who}: {said}" if who else said


AccountGate = Callable[[Principal], Awaitable[None]]


# How many proxies of ours stand in front of the services and append to x-forwarded-for: 1 is
# Envoy alone (it appends the peer it saw); a TLS-terminating load balancer before Envoy makes
# 2. CUMULO_TRUSTED_PROXY_HOPS sets it (cumulo_platform.settings).
DEFAULT_TRUSTED_PROXY_HOPS = 1
# A call slower than this is logged at info even when it succeeded (CUMULO_SLOW_CALL_MS).
DEFAULT_SLOW_CALL_MS = 500.0
# An IPv6 subscriber (a home line, a phone, a server) usually holds a whole /64: counted one
# address at a time, one client would have 2**64 fresh addresses to throttle.
IPV6_NETWORK_PREFIX = 64
# What a malformed x-forwarded-for entry is cut to before it becomes a throttling key.
MAX_ADDRESS_LENGTH = 64


def _client_address(metadata: dict[str, str], peer: str, trusted_proxy_hops: int = DEFAULT_TRUSTED_PROXY_HOPS) -> str:
    """The caller's address. Each trusted proxy appends the peer it saw to x-forwarded-for,
    so the entry `trusted_proxy_hops` from the right is the one the outermost of ours wrote:
    whatever stands left of it the client may have made up. With fewer entries than hops (a
    request that came past the outer proxy) the leftmost is taken, which a proxy of ours
    wrote too. With no trusted hops the header is ignored and the transport peer counts."""
    forwarded = metadata.get(FORWARDED_FOR_HEADER, "") if trusted_proxy_hops > 0 else ""
    entries = [entry.strip() for entry in forwarded.split(",") if entry.strip()]
    if entries:
        return entries[max(len(entries) - trusted_proxy_hops, 0)][:MAX_ADDRESS_LENGTH]
    # peer looks like "ipv4:127.0.0.1:5555" or "ipv6:[::1]:5555"
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return peer


def client_network(address: str) -> str:
    """What per-address limits and throttles count for a client address: an IPv4 address as
    it is, an IPv6 address by its /64 network (an IPv4-mapped one as its IPv4 address).
    An entry with a port ("192.0.2.1:443", "[2001:db8::1]:443") counts without it; anything
    that is no address (a unix socket peer) counts as it is."""
    ip = _parse_ip(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        shift = 128 - IPV6_NETWORK_PREFIX
        return str(ipaddress.IPv6Network(((int(ip) >> shift) << shift, IPV6_NETWORK_PREFIX)))
    return str(ip)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    candidates = [text]
    if text.startswith("["):  # [v6]:port
        candidates.append(text[1:].partition("]")[0])
    elif text.count(":") == 1:  # v4:port
        candidates.append(text.partition(":")[0])
    for candidate in candidates:
        try:
            ip = ipaddress.ip_address(candidate.split("%", 1)[0])  # no zone ("fe80::1%eth0")
        except ValueError:
            continue
        return ip
    return None


class CallInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        *,
        verifier: TokenVerifier,
        clients: ClientRegistry,
        anonymous_methods: Iterable[str] = (),
        recorder: LastAccessRecorder | None = None,
        account_gate: AccountGate | None = None,
        trusted_proxy_hops: int = DEFAULT_TRUSTED_PROXY_HOPS,
        callers: Callable[[str], frozenset[str] | None] = allowed_callers,
        log_calls: str = "slow",
        slow_call_ms: float = DEFAULT_SLOW_CALL_MS,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._metrics = metrics
        self._tracing = tracing
        self._log_every_call = log_calls == "all"
        self._slow_call_ms = slow_call_ms
        self._verifier = verifier
        self._callers = callers
        self._trusted_proxy_hops = trusted_proxy_hops
        self._clients = clients
        self._anonymous = frozenset(anonymous_methods)
        self._recorder = recorder
        self._account_gate = account_gate
        # The wrapped handler per method, built once: the servicer's handlers never change.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is not None:
            return wrapped
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith("/grpc."):
            return handler
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        service_name = method.split("/")[1]
        internal = service_name.endswith("InternalService")
        needs_token = not internal and method not in self._anonymous
        enter = self._enter(method, internal=internal, needs_token=needs_token, allowed=self._callers(method))

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, enter, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, enter, method, streaming=True),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, enter, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, enter, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _enter(
        self, method: str, *, internal: bool, needs_token: bool, allowed: frozenset[str] | None
    ) -> Callable[[grpc.aio.ServicerContext, dict[str, str]], Awaitable[CallInfo]]:
        async def enter(context: grpc.aio.ServicerContext, metadata: dict[str, str]) -> CallInfo:
            call = CallInfo(
                method,
                request_id=metadata.get(REQUEST_ID_HEADER, ""),
                client_id=metadata.get(CLIENT_ID_HEADER, ""),
                caller=caller(context) if allowed is not None else None,
                metadata=metadata,
                context=context,
                trusted_proxy_hops=self._trusted_proxy_hops,
            )
            _current_call.set(call)
            _current_recorder.set(self._recorder)
            if allowed is not None and call.caller not in allowed:
                _refuse_caller(call.caller, method)
            if internal:
                return call
            if not call.client_id:
                raise PermissionDenied(
                    f"metadata {CLIENT_ID_HEADER} must name a registered client app",
                    reason="CLIENT_NOT_AUTHORIZED",
                )
            if not await self._clients.is_registered(call.client_id):
                raise PermissionDenied("this client app is not registered", reason="CLIENT_NOT_AUTHORIZED")
            authorization = metadata.get("authorization", "")
            if not needs_token:
                if authorization.startswith("Bearer "):
                    call.bearer_token = authorization[7:]
                return call
            if not authorization.startswith("Bearer "):
                raise Unauthenticated("this call needs an access token", reason="TOKEN_MISSING")
            token = authorization[7:].strip()
            call.principal = await self._verifier.verify(token)
            call.bearer_token = token
            within_scope(call.principal, method)
            if self._account_gate is not None:
                await self._account_gate(call.principal)
            if self._recorder is not None:
                self._recorder.mark(call.principal.account_id)
            return call

        return enter

    def _wrap_unary(
        self, behavior: Any, enter: Callable[[grpc.aio.ServicerContext, dict[str, str]], Awaitable[CallInfo]], method: str, *, streaming: bool = False
    ) -> Any:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            call: CallInfo | None = None
            metadata = _metadata(context)  # read once: the call's admission and its span
            span = self._tracing.server_span(method, metadata) if self._tracing is not None else None
            try:
                call = await enter(context, metadata)
                return await behavior(request, context)
            except BaseException as exc:
                code = _code_of(exc, context)
                if self._metrics is not None and isinstance(exc, CumuloError) and exc.reason:
                    self._metrics.refusals.labels(method, exc.reason).inc()
                await _answer(context, exc, code)
            finally:
                if streaming and call is not None:
                    self._used_until_now(call)
                self._log_call(code, started, method)
                if span is not None:
                    end_call_span(span, code.name)

        return wrapped

    def _wrap_stream(self, behavior: Any, enter: Callable[[grpc.aio.ServicerContext, dict[str, str]], Awaitable[CallInfo]], method: str) -> Any:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            call: CallInfo | None = None
            metadata = _metadata(context)  # read once: the call's admission and its span
            span = self._tracing.server_span(method, metadata) if self._tracing is not None else None
            try:
                call = await enter(context, metadata)
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:
                    await result
            except BaseException as exc:
                code = _code_of(exc, context)
                if self._metrics is not None and isinstance(exc, CumuloError) and exc.reason:
                    self._metrics.refusals.labels(method, exc.reason).inc()
                await _answer(context, exc, code)
            finally:
                if call is not None:
                    self._used_until_now(call)
                self._log_call(code, started, method)
                if span is not None:
                    end_call_span(span, code.name)

        return wrapped

    def _used_until_now(self, call: CallInfo) -> None:
        """A stream (an upload, a download, a watch) is a use for as long as it lasts: its end
        is marked too, not only its start, or a long upload could end after the account froze
        "unused". The recorder coalesces, so a short stream adds nothing."""
        if self._recorder is not None and call.principal is not None:
            self._recorder.mark(call.principal.account_id)

    def _log_call(self, code: grpc.StatusCode, started: float, method: str) -> None:
        """One line per call only where it tells something: a failed call at info (an
        unexpected failure as an error; a look-up of something that is not there at debug),
        a slow one at info, every other at debug unless `log_calls` is "all" (an operator's
        switch, CUMULO_LOG_CALLS: the edge's access log has every call anyway)."""
        duration_ms = (time.perf_counter() - started) * 1000
        if self._metrics is not None:
            self._metrics.observe(method, code.name, duration_ms / 1000)
        if code == grpc.StatusCode.OK:
            if not self._log_every_call and duration_ms < self._slow_call_ms:
                if debug_enabled():  # the usual case costs no call into structlog
                    log.debug("rpc", code="OK", duration_ms=round(duration_ms, 2))
                return
            level = "info"
        elif code == grpc.StatusCode.NOT_FOUND:
            level = "info" if self._log_every_call else "debug"  # people look things up that are not there
        elif code == grpc.StatusCode.INTERNAL:
            level = "error"
        else:
            level = "info"
        getattr(log, level)("rpc", code=code.name, duration_ms=round(duration_ms, 2))



def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {key: value for key, value in context.invocation_metadata() or () if isinstance(value, str)}


async def _abort(context: grpc.aio.ServicerContext, status: Any, code: grpc.StatusCode) -> NoReturn:
    await context.abort(
        code,
        status.message,
        trailing_metadata=(
            (STATUS_DETAILS_KEY, status.SerializeToString()),
            (REQUEST_ID_HEADER, _request_id()),
        ),
    )
    raise AssertionError("context.abort returns only by raising")


def _refuse_caller(who: str | None, method: str) -> None:
    log.warning("rpc_caller_refused", caller=who or "none")
    if who is None:
        raise Unauthenticated(
            f"{method} needs a caller identity (mutual TLS with a certificate of the internal CA)",
            reason="CALLER_IDENTITY_MISSING",
        )
    raise PermissionDenied(f"{who} may not call {method}", reason="CALLER_NOT_ALLOWED")


def _request_id() -> str:
    try:
        return _current_call.get().request_id
    except LookupError:
        return "unknown"


def _code_of(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a call that raised `exc` ends with."""
    if isinstance(exc, CumuloError):
        return exc.code
    if isinstance(exc, grpc.aio.AbortError):
        code = context.code()
        return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    if isinstance(exc, Exception) and is_outage(exc):
        return grpc.StatusCode.UNAVAILABLE  # a dependency is away (database, auth, NATS): retry
    return grpc.StatusCode.INTERNAL


async def _answer(context: grpc.aio.ServicerContext, exc: BaseException, code: grpc.StatusCode) -> NoReturn:
    """Ends the call for what it raised: a domain error as its status with details, an outage
    as UNAVAILABLE, anything unexpected as INTERNAL with only the request id (logged in
    full); an abort or a cancellation goes on as it is."""
    if isinstance(exc, CumuloError):
        await _abort(context, exc.to_status(), code)
    if isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
        if code == grpc.StatusCode.UNAVAILABLE:
            log.warning("rpc_dependency_unavailable", error=type(exc).__name__)
            outage = Unavailable(f"the service is briefly unavailable; retry (request id {_request_id()})")
            await _abort(context, outage.to_status(), code)
        log.exception("rpc_failed", exc_info=exc)
        await _abort(context, internal_status(_request_id()), code)
    raise exc
