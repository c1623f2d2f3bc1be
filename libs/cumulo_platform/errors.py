"""Domain errors carry a gRPC code and a machine-readable reason; one interceptor maps them
to a status with google.rpc details (ErrorInfo, BadRequest, RetryInfo). Messages are for
people and never contain secrets."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping

import grpc
import sqlalchemy.exc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "cumulo"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class CumuloError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    default_reason: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata
        )
        packed = any_pb2.Any()
        packed.Pack(info)
        return [packed]

    def to_status(self) -> status_pb2.Status:
        return status_pb2.Status(
            code=self.code.value[0], message=self.message, details=self.details()
        )


class InvalidArgument(CumuloError):
    """Bad input; names the field and the rule it broke."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"{field}: {message}", reason=reason, metadata={"field": field})
        self.field = field

    def details(self) -> list[any_pb2.Any]:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=self.field, description=self.message
                )
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        return [*super().details(), packed]


class Unauthenticated(CumuloError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(CumuloError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class NotFound(CumuloError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(CumuloError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(CumuloError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Unavailable(CumuloError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(CumuloError):
    """A call ended because its time ran out: a stream whose client sent or read nothing for
    too long, for one. Clients retry (or resume) as after any deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class ResourceExhausted(CumuloError):
    """Throttled or over a limit. `retry_after` tells the client when to try again."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        retry_after: dt.timedelta | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        meta = dict(metadata or {})
        if retry_after is not None:
            meta["retry_after_seconds"] = str(math.ceil(retry_after.total_seconds()))
        super().__init__(message, reason=reason, metadata=meta)
        self.retry_after = retry_after

    def details(self) -> list[any_pb2.Any]:
        details = super().details()
        if self.retry_after is not None:
            retry = error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(
                    seconds=math.ceil(self.retry_after.total_seconds())
                )
            )
            packed = any_pb2.Any()
            packed.Pack(retry)
            details.append(packed)
        return details


def parse_id(value: str, field: str, what: str) -> uuid.UUID:
    """An id from a request, or INVALID_ARGUMENT naming the field and what belongs there."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidArgument(field, f"must be {what}") from None


def require_audit(reason: str, actor: str) -> None:
    """Operators' and moderators' actions say why and who: both go into the audit trail."""
    if not reason.strip():
        raise InvalidArgument("reason", "say why; it is kept for the audit trail")
    if not actor.strip():
        raise InvalidArgument("actor", "name who decided; it is kept for the audit trail")


def internal_status(request_id: str) -> status_pb2.Status:
    """What an unexpected failure looks like to the caller: generic, with the request id."""
    err = CumuloError(f"internal error; request id {request_id}", metadata={"request_id": request_id})
    status = err.to_status()
    status.code = code_pb2.INTERNAL
    return status


def reason_of(exc: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of another cumulo service's error ("" if it has none)."""
    for key, value in exc.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return info.reason
    return ""


def relayed(exc: grpc.aio.AioRpcError, service: str, field: str = "request") -> CumuloError:
    """Another service's answer, passed on to our caller: a missing thing, a refused state or a
    refusal keeps its code, reason and message; bad input is named as our caller's `field`; a
    service that does not answer is UNAVAILABLE (retry); anything else is an internal error."""
    reason = reason_of(exc) or None
    code = exc.code()
    message = exc.details() or code.name.lower()
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message, reason=reason)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(message, reason=reason)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDenied(message, reason=reason)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(field, message)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return Unavailable(f"the {service} service did not answer; try again", reason=f"{service.upper()}_UNAVAILABLE")
    return CumuloError(f"the {service} service failed ({code.name})", reason=f"{service.upper()}_FAILED")


def is_outage(exc: BaseException) -> bool:
    """Whether a failure is a dependency being away (the database, NATS, another service)
    rather than something wrong with the request or the event: worth retrying, not blaming."""
    if isinstance(exc, Unavailable):
        return True
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))
    return isinstance(exc, (OSError, TimeoutError, sqlalchemy.exc.TimeoutError))
