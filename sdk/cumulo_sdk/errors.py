"""Typed client errors: the gRPC code plus the machine-readable reason and details."""

from __future__ import annotations

import dataclasses

import grpc
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"

# What a person reads when the transport, not a cumulo service, ended the call: such errors
# carry no reason, and their details are the transport's own words ("failed to connect to all
# addresses; last error: ...", Envoy's "upstream connect error ...").
TRANSPORT_WORDS = {
    grpc.StatusCode.UNAVAILABLE: "the cumulo service did not answer (the gateway, or a service behind it, is down); try again in a moment",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the cumulo service did not answer in time; try again in a moment",
}


@dataclasses.dataclass
class CumuloRpcError(Exception):
    code: grpc.StatusCode
    message: str
    reason: str = ""
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    field: str = ""
    retry_after_seconds: float | None = None
    request_id: str = ""

    @property
    def label(self) -> str:
        """The one word a script matches: the reason, or the gRPC code when there is none."""
        return self.reason or self.code.name

    @property
    def sentence(self) -> str:
        """The message for a person: the field it is about in front when the message does not
        name it already, plain words instead of the transport's."""
        if not self.reason and self.code in TRANSPORT_WORDS:
            return TRANSPORT_WORDS[self.code]
        message = self.message or f"the request failed with {self.code.name}"
        if self.field and not message.startswith(self.field):
            message = f"{self.field}: {message}"
        return message

    def __str__(self) -> str:
        return f"{self.sentence} [{self.label}]"

    @classmethod
    def from_rpc_error(cls, exc: grpc.aio.AioRpcError) -> CumuloRpcError:
        error = cls(code=exc.code(), message=exc.details() or "")
        for key, value in exc.trailing_metadata() or ():
            if key == "x-request-id" and isinstance(value, str):
                error.request_id = value
            if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                retry = error_details_pb2.RetryInfo()
                bad_request = error_details_pb2.BadRequest()
                if detail.Unpack(info):
                    error.reason = info.reason
                    error.metadata = dict(info.metadata)
                elif detail.Unpack(retry):
                    error.retry_after_seconds = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
                elif detail.Unpack(bad_request) and bad_request.field_violations:
                    error.field = bad_request.field_violations[0].field
        error.field = error.field or error.metadata.get("field", "")
        return error
