"""JSON over HTTP through the gateway: every public unary method answers its google.api.http
rule (e.g. GET /v1/account), with the same answer as by gRPC (the SDK) and grpc-web, the same
errors (code, reason, field: google.rpc.Status as JSON, under the HTTP status of the code) and
the same refusals (client id, token); internal services have no JSON path at all."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from cumulo.auth.v1 import auth_pb2, auth_pb2_grpc
from cumulo.blob.v1 import blob_pb2
from cumulo.lifecycle.v1 import lifecycle_pb2
from cumulo.locator.v1 import locator_pb2
from cumulo.moderation.v1 import moderation_pb2
from cumulo.sync.v1 import sync_pb2
from cumulo.takeout.v1 import takeout_pb2
from cumulo_devstack.stack import running_gateway
from cumulo_devstack.testing import PASSWORD, People, Person, allowed_caller, forged_access_token, unique_email
from cumulo_devstack.testing.readme import shell_blocks
from cumulo_gateway.envoy_config import JSON_BODY_LIMIT, JSON_TRANSCODER, EdgeLimits, render
from cumulo_gateway.methods import public_methods
from cumulo_gateway.routes import PUBLIC_SERVICES
from cumulo_platform.registry import SERVICES
from cumulo_sdk import Cumulo, CumuloRpcError

from .edge import HTTP_STATUS, Answer, call_json, details, grpc_web, grpc_web_details, json_status, request

# --- the world the calls look at -------------------------------------------------------------


@dataclasses.dataclass
class World:
    owner: Person
    moderator: Person
    folder: blob_pb2.Node
    link: blob_pb2.ShareLink
    zone: str
    device_id: str


async def _make_moderator(people: People, auth_target: str) -> Person:
    person = await people.new("moderation desk")
    async with allowed_caller(auth_target, auth_pb2_grpc.AuthInternalServiceStub) as channel:
        await channel.SetAccountRoles(
            auth_pb2.SetAccountRolesRequest(account_id=person.account_id, roles=["moderator"], reason="json tests", actor="test"), timeout=10
        )
    await person.client.login(person.email, PASSWORD, device_name="moderation desk")  # a token with the role
    return person


@pytest.fixture(scope="module")
async def world(module_people: People, auth) -> World:
    owner = await module_people.new("json phone")
    folder = await owner.client.files.mkdir("", "Photos")
    link = await owner.client.files.share(folder.node_id)
    zone = "notes"
    await owner.client.sync.push(zone, [sync_pb2.RecordSave(record_id="n1", record_type="note", payload=b"milk, eggs")])
    device_id = f"phone-{uuid.uuid4().hex[:8]}"
    register = locator_pb2.RegisterDeviceRequest(device_id=device_id, name="Pixel", model="Pixel 9", platform="android")
    await owner.client.call(_stub(owner.client, AGENT, "RegisterDevice"), register)
    await owner.client.devices.ring(device_id, 10)  # a pending command the device polls
    return World(owner, await _make_moderator(module_people, auth.target), folder, link, zone, device_id)


# --- one method called three ways ------------------------------------------------------------


def _method(service: str, method: str):
    return descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]


def _response_class(service: str, method: str) -> type[Message]:
    return message_factory.GetMessageClass(_method(service, method).output_type)


def _stub(client: Cumulo, service: str, method: str) -> Callable[..., Any]:
    """The method as a gRPC stub's callable on the SDK's channel."""
    return client.channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=_response_class(service, method).FromString,
    )


@dataclasses.dataclass
class Case:
    """A call of `service`'s `method`: its request, the same as JSON over HTTP, and who calls
    (the world's "owner", "moderator", or None: no token)."""

    service: str
    method: str
    request: Callable[[World], Message]
    http: Callable[[World], tuple[str, str, dict[str, Any] | None]]
    caller: str | None = "owner"
    # What must be equal in the three answers (all of it, unless a field moves by itself).
    same: Callable[[Message], Any] = lambda m: m


@dataclasses.dataclass
class Outcome:
    answer: Message | None = None
    code: int = 0
    reason: str = ""
    field: str = ""


async def _three_ways(world: World, case: Case) -> tuple[Outcome, Outcome, Outcome]:
    """(by gRPC through the SDK, by grpc-web, by JSON)."""
    person = getattr(world, case.caller) if case.caller else world.owner
    token = await person.token() if case.caller else ""
    request_message = case.request(world)
    response_class = _response_class(case.service, case.method)

    by_grpc = Outcome()
    try:
        by_grpc.answer = await person.client.call(
            _stub(person.client, case.service, case.method), request_message, authenticated=case.caller is not None
        )
    except CumuloRpcError as error:
        by_grpc = Outcome(None, error.code.value[0], error.reason, error.field)

    by_web = Outcome()
    messages, trailers = await grpc_web(person.client.gateway, f"/{case.service}/{case.method}", request_message, token)
    if trailers["grpc-status"] == "0":
        by_web.answer = response_class.FromString(messages[0])
    else:
        by_web = Outcome(None, int(trailers["grpc-status"]), *grpc_web_details(trailers))

    by_json = Outcome()
    verb, path, body = case.http(world)
    answer = await call_json(person.client.gateway, verb, path, body, token=token)
    if answer.status == 200:
        by_json.answer = json_format.ParseDict(answer.json(), response_class())
    else:
        status = json_status(answer)
        assert answer.status == HTTP_STATUS[status.code], (answer.status, status)
        by_json = Outcome(None, status.code, *details(status))
    return by_grpc, by_web, by_json


AUTH, BLOB, LINKS = "cumulo.auth.v1.AuthService", "cumulo.blob.v1.BlobService", "cumulo.blob.v1.ShareLinkService"
LIFECYCLE, SYNC, BACKUP = "cumulo.lifecycle.v1.LifecycleService", "cumulo.sync.v1.SyncService", "cumulo.sync.v1.BackupService"
LOCATOR, AGENT = "cumulo.locator.v1.DeviceLocatorService", "cumulo.locator.v1.DeviceAgentService"
COMPLAINTS, MODERATION = "cumulo.moderation.v1.ComplaintService", "cumulo.moderation.v1.ModerationService"
TAKEOUT = "cumulo.takeout.v1.TakeoutService"
NOT_AN_ID = "not-an-id"


def _lifecycle_state(response: Message) -> Any:
    # The last access (and the freeze date after it) moves with the calls themselves.
    account = response.account  # type: ignore[attr-defined]
    return account.account_id, account.state, account.held


ANSWERS = [
    Case(AUTH, "GetAccount", lambda w: auth_pb2.GetAccountRequest(), lambda w: ("GET", "/v1/account", None)),
    Case(BLOB, "Stat", lambda w: blob_pb2.StatRequest(node_id=w.folder.node_id), lambda w: ("GET", f"/v1/files/{w.folder.node_id}", None)),
    Case(
        LINKS, "OpenShareLink", lambda w: blob_pb2.OpenShareLinkRequest(token=w.link.token),
        lambda w: ("POST", "/v1/share-links:open", {"token": w.link.token}), caller=None,
    ),
    Case(
        LIFECYCLE, "GetAccountState", lambda w: lifecycle_pb2.GetAccountStateRequest(), lambda w: ("GET", "/v1/account/state", None),
        same=_lifecycle_state,
    ),
    Case(
        SYNC, "FetchChanges", lambda w: sync_pb2.FetchChangesRequest(zone=w.zone, limit=10),
        lambda w: ("GET", f"/v1/zones/{w.zone}/changes?limit=10", None),
    ),
    Case(BACKUP, "ListBackups", lambda w: sync_pb2.ListBackupsRequest(), lambda w: ("GET", "/v1/backups", None)),
    Case(
        LOCATOR, "GetDevice", lambda w: locator_pb2.GetDeviceRequest(device_id=w.device_id),
        lambda w: ("GET", f"/v1/devices/{w.device_id}", None),
    ),
    Case(
        AGENT, "PollCommands", lambda w: locator_pb2.PollCommandsRequest(device_id=w.device_id),
        lambda w: ("GET", f"/v1/devices/{w.device_id}/pending-commands", None),
        same=lambda r: [(c.command_id, c.kind, c.created_at) for c in r.commands],  # each poll counts a delivery
    ),
    Case(COMPLAINTS, "ListMyCases", lambda w: moderation_pb2.ListMyCasesRequest(), lambda w: ("GET", "/v1/account/cases", None)),
    Case(
        MODERATION, "ListBlocklist", lambda w: moderation_pb2.ListBlocklistRequest(page_size=5),
        lambda w: ("GET", "/v1/moderation/blocklist?page_size=5", None), caller="moderator",
    ),
    Case(TAKEOUT, "ListExports", lambda w: takeout_pb2.ListExportsRequest(), lambda w: ("GET", "/v1/exports", None)),
]

ERRORS = [
    Case(
        AUTH, "Login", lambda w: auth_pb2.LoginRequest(login="", password="x"),
        lambda w: ("POST", "/v1/sessions:login", {"login": "", "password": "x"}), caller=None,
    ),
    Case(BLOB, "Stat", lambda w: blob_pb2.StatRequest(node_id=NOT_AN_ID), lambda w: ("GET", f"/v1/files/{NOT_AN_ID}", None)),
    Case(
        LINKS, "OpenShareLink", lambda w: blob_pb2.OpenShareLinkRequest(token=""),
        lambda w: ("POST", "/v1/share-links:open", {"token": ""}), caller=None,
    ),
    Case(
        LIFECYCLE, "ReactivateWithLink", lambda w: lifecycle_pb2.ReactivateWithLinkRequest(token=""),
        lambda w: ("POST", "/v1/account:reactivateWithLink", {"token": ""}), caller=None,
    ),
    Case(
        SYNC, "FetchChanges", lambda w: sync_pb2.FetchChangesRequest(zone=w.zone, change_token="garbage"),
        lambda w: ("GET", f"/v1/zones/{w.zone}/changes?change_token=garbage", None),
    ),
    Case(
        BACKUP, "GetBackup", lambda w: sync_pb2.GetBackupRequest(backup_id=NOT_AN_ID), lambda w: ("GET", f"/v1/backups/{NOT_AN_ID}", None),
    ),
    Case(
        LOCATOR, "ListDevices", lambda w: locator_pb2.ListDevicesRequest(account_id=NOT_AN_ID),
        lambda w: ("GET", f"/v1/devices?account_id={NOT_AN_ID}", None),
    ),
    Case(
        AGENT, "RegisterDevice", lambda w: locator_pb2.RegisterDeviceRequest(device_id="d" * 200),
        lambda w: ("POST", f"/v1/devices/{'d' * 200}:register", {}),
    ),
    Case(
        COMPLAINTS, "FileComplaint", lambda w: moderation_pb2.FileComplaintRequest(description="bad"),
        lambda w: ("POST", "/v1/complaints", {"description": "bad"}),
    ),
    Case(
        MODERATION, "GetCase", lambda w: moderation_pb2.GetCaseRequest(case_id=NOT_AN_ID),
        lambda w: ("GET", f"/v1/moderation/cases/{NOT_AN_ID}", None), caller="moderator",
    ),
    Case(
        TAKEOUT, "GetExport", lambda w: takeout_pb2.GetExportRequest(export_id=NOT_AN_ID), lambda w: ("GET", f"/v1/exports/{NOT_AN_ID}", None),
    ),
]


def test_the_cases_cover_every_public_service():
    assert {c.service for c in ANSWERS} == set(PUBLIC_SERVICES)
    assert {c.service for c in ERRORS} == set(PUBLIC_SERVICES)


@pytest.mark.parametrize("case", ANSWERS, ids=lambda c: f"{c.service.rsplit('.', 1)[1]}.{c.method}")
async def test_the_same_answer_by_grpc_grpc_web_and_json(world, case):
    by_grpc, by_web, by_json = await _three_ways(world, case)
    assert by_grpc.answer is not None, by_grpc
    assert by_web.answer is not None, by_web
    assert by_json.answer is not None, by_json
    assert case.same(by_web.answer) == case.same(by_grpc.answer)
    assert case.same(by_json.answer) == case.same(by_grpc.answer)


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: f"{c.service.rsplit('.', 1)[1]}.{c.method}")
async def test_a_bad_input_is_refused_alike_by_grpc_grpc_web_and_json(world, case):
    by_grpc, by_web, by_json = await _three_ways(world, case)
    assert by_grpc.answer is None and by_grpc.code not in (0, grpc.StatusCode.INTERNAL.value[0]), by_grpc
    assert by_grpc.reason
    if by_grpc.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]:
        assert by_grpc.field
    assert by_web == by_grpc
    assert by_json == by_grpc


async def test_json_answers_print_every_field_under_its_proto_name(world):
    answer = await call_json(world.owner.client.gateway, "GET", "/v1/account", token=await world.owner.token())
    body = answer.json()
    assert body["current_terms_version"]  # preserve_proto_field_names
    assert body["account"]["phone"] == "" and body["account"]["minor"] is False  # always_print_primitive_fields
    assert body["account"]["status"] == "ACCOUNT_STATUS_ACTIVE"  # enums by name
    usage = (await call_json(world.owner.client.gateway, "GET", "/v1/usage", token=await world.owner.token())).json()
    assert usage["quota"] == str((await world.owner.client.files.usage()).quota)  # int64 as a string (proto3 JSON)


# --- refusals --------------------------------------------------------------------------------

AUTHENTICATED_READS = [
    (AUTH, "GetAccount", auth_pb2.GetAccountRequest(), "/v1/account"),
    (BLOB, "GetUsage", blob_pb2.GetUsageRequest(), "/v1/usage"),
    (LIFECYCLE, "GetAccountState", lifecycle_pb2.GetAccountStateRequest(), "/v1/account/state"),
    (SYNC, "ListZones", sync_pb2.ListZonesRequest(), "/v1/zones"),
    (LOCATOR, "ListDevices", locator_pb2.ListDevicesRequest(), "/v1/devices"),
    (MODERATION, "ListQueue", moderation_pb2.ListQueueRequest(), "/v1/moderation/cases"),
]


@pytest.mark.parametrize(("service", "method", "message", "path"), AUTHENTICATED_READS, ids=lambda v: v if isinstance(v, str) else "")
async def test_no_token_or_a_forged_one_is_refused_by_json_as_by_grpc(gateway, signing_key, service, method, message, path):
    async with Cumulo(gateway) as anonymous:
        for token in ("", forged_access_token(signing_key)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await _stub(anonymous, service, method)(message, metadata=anonymous.metadata(token or None), timeout=30)
            by_grpc = CumuloRpcError.from_rpc_error(caught.value)
            assert by_grpc.code == grpc.StatusCode.UNAUTHENTICATED and by_grpc.reason
            answer = await call_json(gateway, "GET", path, token=token)
            status = json_status(answer)
            assert (answer.status, status.code, details(status)[0]) == (401, 16, by_grpc.reason)


async def test_json_without_a_client_id_is_refused_at_the_edge(gateway):
    answer = await call_json(gateway, "GET", "/v1/terms", client_id=None)
    status = json_status(answer)
    assert (answer.status, status.code, details(status)[0]) == (403, 7, "CLIENT_NOT_AUTHORIZED")
    assert "x-cumulo-client-id" in status.message


async def test_json_with_an_unknown_client_id_is_refused_by_the_service(gateway):
    answer = await call_json(gateway, "GET", "/v1/terms", client_id="not-a-registered-app")
    status = json_status(answer)
    assert (answer.status, status.code, details(status)[0]) == (403, 7, "CLIENT_NOT_AUTHORIZED")


async def test_a_wrong_password_by_json_is_not_echoed(gateway):
    secret = f"hunter2-{uuid.uuid4().hex}"
    answer = await call_json(gateway, "POST", "/v1/sessions:login", {"login": unique_email(), "password": secret})
    status = json_status(answer)
    assert (answer.status, details(status)[0]) == (401, "INVALID_CREDENTIALS")
    assert secret not in answer.body.decode() and secret not in str(answer.headers)


async def test_what_the_gateway_refuses_itself_is_json_too(gateway, user):
    """The transcoder's refusals (an unknown query parameter, a body that contradicts the path,
    a body that is not JSON) and an unknown path: google.rpc.Status as JSON, naming the field."""
    client, _ = user
    token = await client.access_token()
    unknown = await call_json(gateway, "GET", "/v1/files?colour=red", token=token)
    clash = await call_json(gateway, "POST", f"/v1/files/{uuid.uuid4()}:rename", {"node_id": str(uuid.uuid4()), "new_name": "x"}, token=token)
    broken = await request(
        gateway, "POST", "/v1/sessions:login", b'{"login": ', {"x-cumulo-client-id": "cumulo-cli", "content-type": "application/json"}
    )
    for answer, named in ((unknown, "colour"), (clash, "node_id"), (broken, "")):
        status = json_status(answer)
        assert (answer.status, status.code) == (400, 3), answer
        assert named in status.message
    nowhere = await call_json(gateway, "GET", "/v1/nowhere", token=token)
    assert (nowhere.status, json_status(nowhere).code) == (404, 5)


async def test_a_json_body_bigger_than_a_grpc_message_may_be_is_refused(gateway):
    """RESOURCE_EXHAUSTED, whether the transcoder stops it (413) or the service's gRPC limit
    does (429), and the gateway goes on serving."""
    body = b'{"login": "' + b"a" * JSON_BODY_LIMIT + b'", "password": "x"}'
    answer = await request(gateway, "POST", "/v1/sessions:login", body, {"x-cumulo-client-id": "cumulo-cli", "content-type": "application/json"})
    assert answer.status in (413, 429) and json_status(answer).code == 8, (answer.status, answer.body[:300])
    assert (await call_json(gateway, "GET", "/v1/terms")).status == 200


# --- internal services -----------------------------------------------------------------------


def _internal_methods() -> list[tuple[str, str]]:
    """Every method of every service no gateway route names (the *InternalService ones)."""
    found = []
    for module in ("auth", "blob", "lifecycle", "sync", "locator", "moderation"):
        file = descriptor_pool.Default().FindFileByName(f"cumulo/{module}/v1/{module}.proto")
        for service in file.services_by_name.values():
            if service.full_name not in PUBLIC_SERVICES:
                found += [(service.full_name, m.name) for m in service.methods]
    return found


def _transcoder(config: dict) -> dict:
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    (transcoder,) = [f["typed_config"] for f in manager["http_filters"] if f["name"] == JSON_TRANSCODER]
    return transcoder


def _config() -> dict:
    return render(listen_host="127.0.0.1", listen_port=1, admin_port=2, backends={n: "127.0.0.1:3" for n in SERVICES}, tls=None)


def test_the_transcoder_knows_only_the_public_services():
    transcoder = _transcoder(_config())
    assert sorted(transcoder["services"]) == sorted(PUBLIC_SERVICES)
    assert not transcoder.get("auto_mapping")  # no /package.Service/Method JSON paths
    assert not transcoder.get("match_incoming_request_route")  # the gRPC path's route decides
    served = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(transcoder["proto_descriptor_bin"]))
    services = {f"{f.package}.{s.name}" for f in served.file for s in f.service}
    assert services == set(PUBLIC_SERVICES)  # the internal ones are not even described
    assert {"google/rpc/status.proto", "google/rpc/error_details.proto"} <= {f.name for f in served.file}


def test_the_transcoder_comes_after_grpc_web_and_before_the_edge_limits_and_the_router():
    manager = _config()["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in manager["http_filters"]]
    assert names.index("envoy.filters.http.grpc_web") < names.index(JSON_TRANSCODER) < names.index("envoy.filters.http.local_ratelimit")
    assert names[-1] == "envoy.filters.http.router"


async def test_no_json_path_reaches_an_internal_service(gateway):
    internal = _internal_methods()
    assert ("cumulo.auth.v1.AuthInternalService", "SetAccountRoles") in internal
    headers = {"x-cumulo-client-id": "cumulo-cli", "content-type": "application/json"}
    for service, method in internal:
        for verb in ("POST", "GET"):
            answer = await request(gateway, verb, f"/{service}/{method}", b"{}" if verb == "POST" else None, headers)
            assert answer.status == 404, (service, method, verb, answer.status)


# --- the rules themselves --------------------------------------------------------------------


def _rule(service: str, method: str) -> Any:
    return _method(service, method).GetOptions().Extensions[annotations_pb2.http]


def test_every_public_unary_method_has_an_http_rule():
    """A new public RPC without a google.api.http rule fails here (and has no JSON path)."""
    seen: dict[tuple[str, str], str] = {}
    missing = []
    for method in public_methods():
        if method.streaming:
            continue
        rule = _rule(method.service, method.name)
        verb = rule.WhichOneof("pattern")
        if verb is None:
            missing.append(method.key)
            continue
        template = getattr(rule, verb)
        assert template.startswith("/v1/"), (method.key, template)
        assert (verb, template) not in seen, f"{method.key} and {seen.get((verb, template))} share {verb.upper()} {template}"
        seen[(verb, template)] = method.key
        # Reads take no body; the rest take the whole request as the body.
        assert rule.body == ("" if verb in ("get", "delete") else "*"), (method.key, verb, rule.body)
    assert not missing, f"public unary methods without a google.api.http rule: {missing}"


def test_no_secret_goes_in_a_url():
    """A GET or DELETE carries the request's fields in the URL (which proxies and logs keep):
    none of those requests has a password or a token field (page and change tokens are cursors)."""
    cursors = {"page_token", "change_token"}
    for method in public_methods():
        if method.streaming:
            continue
        rule = _rule(method.service, method.name)
        fields = {f.name for f in _method(method.service, method.name).input_type.fields}
        in_url = fields if rule.WhichOneof("pattern") in ("get", "delete") else set(re.findall(r"\{(\w+)", getattr(rule, rule.WhichOneof("pattern"))))
        secrets = {f for f in in_url - cursors if "password" in f or "token" in f or f == "receipt"}
        assert not secrets, (method.key, secrets)


# --- the edge's limits apply to JSON as to gRPC ----------------------------------------------

ATTACKER, VICTIM = "198.51.100.17", "203.0.113.19"


@pytest.fixture(scope="module")
async def stingy_gateway(infra, backends) -> AsyncIterator[str]:
    """A gateway whose per-address bucket for the expensive anonymous calls holds 2 and gains
    1 a second, trusting one proxy hop (so that a test speaks for two client addresses)."""
    with running_gateway(infra.tls, infra.root, backends, EdgeLimits(burst=2, per_second=1, trusted_hops=1), identities=infra.identities) as target:
        yield target


async def _json_from(gateway: str, address: str, verb: str, path: str, body: dict[str, Any] | None = None, token: str = "") -> Answer:
    headers = {"x-cumulo-client-id": "cumulo-cli", "x-forwarded-for": address, "content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    return await request(gateway, verb, path, json.dumps(body).encode() if body is not None else None, headers)


async def test_a_json_register_flood_is_cut_at_the_edge_while_another_address_signs_up(stingy_gateway):
    refused = None
    for _ in range(30):  # bounded: the bucket holds 2 and gains 1 a second
        answer = await _json_from(stingy_gateway, ATTACKER, "POST", "/v1/accounts", {})
        if answer.status == 429:
            refused = answer
            break
        assert answer.status == 400  # it reached auth, which refuses an empty registration
    assert refused is not None, "the edge never limited the JSON registrations"
    status = json_status(refused)
    assert (status.code, details(status)[0]) == (8, "EDGE_RATE_LIMITED")
    assert any(d.type_url.endswith("google.rpc.RetryInfo") for d in status.details)
    # Meanwhile another address signs up, logs in and is served, all by JSON.
    terms = (await _json_from(stingy_gateway, VICTIM, "GET", "/v1/terms")).json()["version"]
    email = unique_email()
    signup = {"email": email, "password": PASSWORD, "birth_date": {"year": 1990, "month": 5, "day": 17}, "accepted_terms_version": terms}
    assert (await _json_from(stingy_gateway, VICTIM, "POST", "/v1/accounts", signup)).status == 200
    login = await _json_from(stingy_gateway, VICTIM, "POST", "/v1/sessions:login", {"login": email, "password": PASSWORD})
    token = login.json()["tokens"]["access_token"]
    account = await _json_from(stingy_gateway, VICTIM, "GET", "/v1/account", token=token)
    assert account.json()["account"]["email"] == email


# --- the README's curl lines -----------------------------------------------------------------

README_GATEWAY = "https://127.0.0.1:8080"
README_CA = "var/tls/ca.pem"
README_EMAIL = "alice@example.com"


async def test_the_readme_curl_lines_work_as_pasted(gateway, client, tmp_path):
    """The README's JSON block, run by bash against the session's gateway (its address and CA
    in place of make run's) for a fresh account of the README's password."""
    (block,) = shell_blocks("### JSON over HTTP")
    assert block.count("curl ") >= 3 and README_GATEWAY in block and README_CA in block and README_EMAIL in block
    email = unique_email()
    await client.register(email=email, password=PASSWORD, birth_date=dt.date(1990, 5, 17))
    script = block.replace(README_GATEWAY, f"https://{gateway}").replace(README_CA, os.environ["CUMULO_CA"]).replace(README_EMAIL, email)
    done = await asyncio.to_thread(
        subprocess.run, ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert '"version"' in done.stdout  # GetTerms
    assert f'"email":"{email}"' in done.stdout.replace(" ", "")  # the authenticated GET /v1/account
