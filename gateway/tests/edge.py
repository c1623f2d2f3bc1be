"""Calls through a gateway over HTTPS (HTTP/1.1, trusting the session's CA) as browsers and
scripts make them: grpc-web, and JSON over HTTP by the methods' google.api.http rules; and the
error details (reason, field) of each, read as the SDK reads a gRPC error's."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from cumulo_devstack.testing.https import Answer, request

__all__ = ["Answer", "request"]

CONSOLE_ORIGIN = "https://console.cumulo.test"  # the root conftest lets it call
STATUS_DETAILS = "grpc-status-details-bin"
CLIENT_ID = "cumulo-cli"


def frame(message: Message) -> bytes:
    body = message.SerializeToString()
    return b"\x00" + struct.pack(">I", len(body)) + body


def parse_grpc_web(headers: dict[str, str], body: bytes) -> tuple[list[bytes], dict[str, str]]:
    """grpc-web's answer: its messages, and its trailers (a final frame flagged 0x80, or the
    response headers for a trailers-only answer)."""
    messages, trailers = [], {k: v for k, v in headers.items() if k.startswith("grpc-")}
    while body:
        flag, length = body[0], struct.unpack(">I", body[1:5])[0]
        payload, body = body[5 : 5 + length], body[5 + length :]
        if flag & 0x80:
            for line in payload.decode().split("\r\n"):
                if line:
                    key, _, value = line.partition(":")
                    trailers[key.strip().lower()] = value.strip()
        else:
            messages.append(payload)
    return messages, trailers


async def grpc_web(gateway: str, path: str, message: Message, token: str = "") -> tuple[list[bytes], dict[str, str]]:
    """A grpc-web call from the console's origin; asserts that CORS lets the console read it."""
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-cumulo-client-id": CLIENT_ID, "origin": CONSOLE_ORIGIN}
    if token:
        headers["authorization"] = f"Bearer {token}"
    answer = await request(gateway, "POST", path, frame(message), headers)
    assert answer.status == 200, answer.body
    assert answer.headers.get("access-control-allow-origin") == CONSOLE_ORIGIN
    return parse_grpc_web(answer.headers, answer.body)


async def call_json(
    gateway: str, method: str, path: str, body: dict[str, Any] | None = None, *, token: str = "", client_id: str | None = CLIENT_ID
) -> Answer:
    """A JSON call as curl makes it: the client id (unless None) and the token as headers, the
    request's fields in the path, the query or a JSON body."""
    headers = {"accept": "application/json"}
    if client_id is not None:
        headers["x-cumulo-client-id"] = client_id
    if token:
        headers["authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        headers["content-type"] = "application/json"
        data = json.dumps(body).encode()
    return await request(gateway, method, path, data, headers)


def details(status: status_pb2.Status) -> tuple[str, str]:
    """(reason, field) from google.rpc details, as the SDK reads them."""
    reason = field = ""
    for detail in status.details:
        info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad) and bad.field_violations:
            field = bad.field_violations[0].field
    return reason, field


def grpc_web_details(trailers: dict[str, str]) -> tuple[str, str]:
    encoded = trailers[STATUS_DETAILS]
    return details(status_pb2.Status.FromString(base64.b64decode(encoded + "=" * (-len(encoded) % 4))))


def json_status(answer: Answer) -> status_pb2.Status:
    """A JSON error: google.rpc.Status (its details with their @type)."""
    return json_format.ParseDict(answer.json(), status_pb2.Status())


# HTTP status of each gRPC code, as google.rpc.Code documents them (and the transcoder maps).
HTTP_STATUS = {3: 400, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 16: 401, 12: 501, 13: 500, 14: 503}
