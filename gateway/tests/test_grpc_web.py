"""Browsers reach the public API through the gateway by grpc-web (HTTP/1.1 here, as fetch()
may), with the same answers and the same error reasons as gRPC clients; CORS lets only the
configured origins read them."""

import pytest

from cumulo.auth.v1 import auth_pb2
from cumulo.blob.v1 import blob_pb2
from cumulo_sdk import CumuloRpcError

from .edge import CONSOLE_ORIGIN, frame, grpc_web, grpc_web_details, request


async def test_an_anonymous_call_by_grpc_web_answers_as_by_grpc(gateway, client):
    messages, trailers = await grpc_web(gateway, "/cumulo.auth.v1.AuthService/GetTerms", auth_pb2.GetTermsRequest())
    assert trailers["grpc-status"] == "0"
    assert auth_pb2.GetTermsResponse.FromString(messages[0]).version == await client.terms_version()


async def test_an_authenticated_call_by_grpc_web_answers_as_by_grpc(gateway, user):
    client, _email = user
    token = await client.access_token()
    messages, trailers = await grpc_web(gateway, "/cumulo.blob.v1.BlobService/GetUsage", blob_pb2.GetUsageRequest(), token)
    assert trailers["grpc-status"] == "0"
    assert blob_pb2.GetUsageResponse.FromString(messages[0]).quota == (await client.files.usage()).quota


async def test_errors_by_grpc_web_carry_the_same_code_reason_and_field(gateway, client):
    bad = auth_pb2.LoginRequest(login="", password="x")
    with pytest.raises(CumuloRpcError) as by_grpc:
        await client.call(client.auth.Login, bad, authenticated=False)
    _, trailers = await grpc_web(gateway, "/cumulo.auth.v1.AuthService/Login", bad)
    assert trailers["grpc-status"] == str(by_grpc.value.code.value[0])
    assert grpc_web_details(trailers) == (by_grpc.value.reason, by_grpc.value.field)


async def test_someone_elses_or_no_token_is_refused_by_grpc_web_too(gateway):
    _, trailers = await grpc_web(gateway, "/cumulo.blob.v1.BlobService/GetUsage", blob_pb2.GetUsageRequest())
    assert trailers["grpc-status"] == "16"  # UNAUTHENTICATED
    _, trailers = await grpc_web(gateway, "/cumulo.blob.v1.BlobService/GetUsage", blob_pb2.GetUsageRequest(), "not.a.token")
    assert trailers["grpc-status"] == "16"


async def test_internal_services_are_not_reachable_by_grpc_web(gateway):
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-cumulo-client-id": "cumulo-cli"}
    answer = await request(gateway, "POST", "/cumulo.auth.v1.AuthInternalService/GetSigningKeys", frame(auth_pb2.GetSigningKeysRequest()), headers)
    assert answer.status == 404


async def _preflight(gateway: str, origin: str, path: str = "/cumulo.auth.v1.AuthService/GetTerms"):
    headers = {
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-grpc-web,x-cumulo-client-id,authorization",
    }
    return await request(gateway, "OPTIONS", path, headers=headers)


async def test_cors_lets_the_configured_origin_in_and_no_other(gateway):
    allowed = (await _preflight(gateway, CONSOLE_ORIGIN)).headers
    assert allowed.get("access-control-allow-origin") == CONSOLE_ORIGIN
    assert "x-cumulo-client-id" in allowed.get("access-control-allow-headers", "")
    stranger = (await _preflight(gateway, "https://evil.example")).headers
    assert "access-control-allow-origin" not in stranger


async def test_a_preflight_for_an_internal_service_is_not_forwarded(gateway):
    answer = await _preflight(gateway, CONSOLE_ORIGIN, "/cumulo.auth.v1.AuthInternalService/SetAccountRoles")
    assert answer.status == 404


async def test_a_browser_calling_json_from_an_allowed_origin_gets_its_preflight_answered(gateway):
    """fetch("/v1/account", {headers: {authorization}}) from the console's origin is preceded by
    a preflight of the JSON path, which the transcoder does not know (no OPTIONS binding)."""
    allowed = await _preflight(gateway, CONSOLE_ORIGIN, "/v1/account")
    assert allowed.headers.get("access-control-allow-origin") == CONSOLE_ORIGIN, allowed
    assert "authorization" in allowed.headers.get("access-control-allow-headers", "")
    stranger = await _preflight(gateway, "https://evil.example", "/v1/account")
    assert "access-control-allow-origin" not in stranger.headers
