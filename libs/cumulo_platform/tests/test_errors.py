"""Domain errors -> google.rpc.Status with ErrorInfo, BadRequest and RetryInfo details."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo_devstack.testing import bare_rpc_error
from cumulo_platform.errors import (
    ERROR_DOMAIN,
    STATUS_DETAILS_KEY,
    AlreadyExists,
    CumuloError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    internal_status,
)


def unpack(status: status_pb2.Status) -> dict[str, object]:
    """The details by type; each type at most once."""
    found: dict[str, object] = {}
    for any_detail in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if any_detail.Is(cls.DESCRIPTOR):
                message = cls()
                any_detail.Unpack(message)
                assert cls.__name__ not in found, f"{cls.__name__} appears twice"
                found[cls.__name__] = message
                break
        else:
            raise AssertionError(f"unexpected detail {any_detail.type_url}")
    return found


def test_invalid_argument_carries_error_info_and_bad_request_field():
    err = InvalidArgument("email", "is not an e-mail address", reason="EMAIL_INVALID")
    status = err.to_status()
    assert status.code == code_pb2.INVALID_ARGUMENT
    assert "email" in status.message and "is not an e-mail address" in status.message
    details = unpack(status)
    assert set(details) == {"ErrorInfo", "BadRequest"}
    info = details["ErrorInfo"]
    assert info.reason == "EMAIL_INVALID"
    assert info.domain == ERROR_DOMAIN
    assert dict(info.metadata) == {"field": "email"}
    bad_request = details["BadRequest"]
    assert [v.field for v in bad_request.field_violations] == ["email"]
    assert "is not an e-mail address" in bad_request.field_violations[0].description


def test_invalid_argument_default_reason():
    details = unpack(InvalidArgument("birth_date", "is required").to_status())
    assert details["ErrorInfo"].reason == "INVALID_ARGUMENT"
    assert details["BadRequest"].field_violations[0].field == "birth_date"


def test_resource_exhausted_carries_retry_info_rounded_up():
    err = ResourceExhausted("too many attempts", reason="LOGIN_THROTTLED", retry_after=dt.timedelta(seconds=2.2))
    status = err.to_status()
    assert status.code == code_pb2.RESOURCE_EXHAUSTED
    details = unpack(status)
    assert set(details) == {"ErrorInfo", "RetryInfo"}
    assert details["RetryInfo"].retry_delay.seconds == 3
    assert details["ErrorInfo"].reason == "LOGIN_THROTTLED"
    assert details["ErrorInfo"].metadata["retry_after_seconds"] == "3"


def test_resource_exhausted_without_retry_after_has_no_retry_info():
    details = unpack(ResourceExhausted("quota full", metadata={"quota": "storage"}).to_status())
    assert set(details) == {"ErrorInfo"}
    assert dict(details["ErrorInfo"].metadata) == {"quota": "storage"}


@pytest.mark.parametrize(
    ("cls", "code", "reason"),
    [
        (Unauthenticated, code_pb2.UNAUTHENTICATED, "UNAUTHENTICATED"),
        (PermissionDenied, code_pb2.PERMISSION_DENIED, "PERMISSION_DENIED"),
        (NotFound, code_pb2.NOT_FOUND, "NOT_FOUND"),
        (AlreadyExists, code_pb2.ALREADY_EXISTS, "ALREADY_EXISTS"),
        (FailedPrecondition, code_pb2.FAILED_PRECONDITION, "FAILED_PRECONDITION"),
        (Unavailable, code_pb2.UNAVAILABLE, "UNAVAILABLE"),
        (CumuloError, code_pb2.INTERNAL, "INTERNAL"),
    ],
)
def test_codes_and_default_reasons(cls, code, reason):
    status = cls("something").to_status()
    assert status.code == code
    assert status.message == "something"
    assert unpack(status)["ErrorInfo"].reason == reason


def test_internal_status_is_generic_with_request_id():
    status = internal_status("req-123")
    assert status.code == code_pb2.INTERNAL
    assert "req-123" in status.message
    info = unpack(status)["ErrorInfo"]
    assert info.metadata["request_id"] == "req-123"


# --- through the interceptor of a real service ------------------------------------------


def status_of(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no {STATUS_DETAILS_KEY} in the trailers")


async def test_interceptor_sends_invalid_argument_with_details(auth):
    err = await bare_rpc_error(
        auth.target,
        auth_pb2_grpc.AuthServiceStub,
        "Register",
        auth_pb2.RegisterRequest(email="x@example.com", password="correct horse battery staple"),
        metadata=[("x-cumulo-client-id", "cumulo-cli"), ("x-request-id", "rid-errors-1")],
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = status_of(err)
    assert status.code == code_pb2.INVALID_ARGUMENT
    details = unpack(status)
    assert details["BadRequest"].field_violations[0].field == "birth_date"
    assert details["ErrorInfo"].domain == ERROR_DOMAIN
    assert dict(err.trailing_metadata()).get("x-request-id") == "rid-errors-1"


async def test_interceptor_refuses_unknown_client(auth):
    metadata = [("x-cumulo-client-id", "no-such-app")]
    err = await bare_rpc_error(auth.target, auth_pb2_grpc.AuthServiceStub, "GetTerms", auth_pb2.GetTermsRequest(), metadata=metadata)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert unpack(status_of(err))["ErrorInfo"].reason == "CLIENT_NOT_AUTHORIZED"
