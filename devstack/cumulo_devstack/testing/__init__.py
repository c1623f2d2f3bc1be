"""Helpers for the tests of every package (pytest runs with --import-mode=importlib, so test
modules cannot import each other; they import these instead). Import them from here:

- `eventually` (waiting): bounded polling.
- calls: `rpc`, `call`, `expect_error`: gRPC calls that raise the SDK's CumuloRpcError, and the
  assertion that one does; `bare_rpc_error` for a call without the SDK; `fake_client_address`:
  a client address no other call uses; `everything_said`: all an error says.
- channels: `open_channel`, `transport_for`: a bare channel / the SDK's transport to an address
  of the session, TLS for a gateway (`serves_tls` registers one), mutual TLS for a service
  (`serves_service`), as the gateway or the identity named (`identity`: one of the session's);
  `allowed_caller`: an internal service's stub calling each method as one the allow-list lets;
  `start_service`: a service's runtime started in the test's process and registered.
- clocks: `clock_moved`: a service's clock moved for a block (a job run "later"), then put back.
- values: `unique_email`, `unique_phone`, `unique_event_type`: values no other test uses.
- tokens: `forge_token`, an access token of one of the kinds in `FORGERIES` that auth never
  issued (`b64url`, `b64json`: the JWT encodings it writes them in); `signing_key_of`: auth's
  signing key id and public key (the root conftest's `signing_key`); `forged_access_token`: a
  token for a made-up account, signed by a key auth never had; `token_claims`, `token_expiry`:
  what a token says.
- accounts: `Person`, `People`: accounts registered and logged in through the gateway (the root
  conftest's `people` and `module_people` fixtures); `new_member`: one with a photo uploaded
  (`signed_up_member`: its client closed after a block); `verify_contact`, `verify_email`,
  `code_sent_to`: a contact verified through the real flow, the code read from the session's
  mail or SMS catcher (the root conftest's `mail`, `sms`); `lifecycle_has_contact`: the
  lifecycle has a verified address (notices asked for from then on reach it).
- methods: `invoke`, `call_in_shape`: any method (unary or streaming) by its descriptor or
  path, with the metadata of the test's choosing (`with_client_id`).
- gates: `gate_cases`, `assert_gated`: the test each service keeps that every method of its
  public services is gated (`public_services`, `public_methods`: those services and methods) (the full matrix of bad tokens is tried once, on the platform's
  interceptor, in libs/cumulo_platform/tests/test_call_door.py).
- streams: `read_stream`: the event envelopes JetStream holds on a subject; `nats_connect`: a
  NATS connection as one of the session's identities (the operator unless named).
- aging: `Ages`: ages one account on purpose for the lifecycle (a year unused, a grace over),
  once every access event already made has landed; `notices_sent`: its e-mails are out.

`cumulo` and `cumulo-admin` as the tests run them are in `cumulo_devstack.testing.cli`.
"""

from cumulo_devstack.testing.accounts import (
    PASSWORD,
    Member,
    People,
    Person,
    code_sent_to,
    lifecycle_has_contact,
    new_member,
    signed_up_member,
    verify_contact,
    verify_email,
)
from cumulo_devstack.testing.aging import Ages, notices_sent
from cumulo_devstack.testing.calls import bare_rpc_error, call, everything_said, expect_error, fake_client_address, rpc
from cumulo_devstack.testing.channels import (
    AllowedCaller,
    allowed_caller,
    identity,
    open_channel,
    serves_service,
    serves_tls,
    start_service,
    transport_for,
)
from cumulo_devstack.testing.clocks import clock_moved
from cumulo_devstack.testing.gates import assert_gated, gate_cases, public_methods, public_services
from cumulo_devstack.testing.methods import call_in_shape, invoke, method_id, method_path, rpc_method, with_client_id
from cumulo_devstack.testing.streams import Delivered, nats_connect, read_stream
from cumulo_devstack.testing.tokens import (
    FORGERIES,
    b64json,
    b64url,
    forge_token,
    forged_access_token,
    signing_key_of,
    token_claims,
    token_expiry,
)
from cumulo_devstack.testing.values import unique_email, unique_event_type, unique_phone
from cumulo_devstack.testing.waiting import eventually

__all__ = [
    "code_sent_to",
    "lifecycle_has_contact",
    "verify_contact",
    "verify_email",
    "AllowedCaller",
    "allowed_caller",
    "identity",
    "open_channel",
    "serves_service",
    "serves_tls",
    "start_service",
    "transport_for",
    "FORGERIES",
    "PASSWORD",
    "Ages",
    "Delivered",
    "Member",
    "People",
    "Person",
    "assert_gated",
    "b64json",
    "b64url",
    "bare_rpc_error",
    "call",
    "call_in_shape",
    "clock_moved",
    "everything_said",
    "eventually",
    "expect_error",
    "fake_client_address",
    "forge_token",
    "forged_access_token",
    "gate_cases",
    "invoke",
    "method_id",
    "method_path",
    "new_member",
    "notices_sent",
    "public_methods",
    "public_services",
    "nats_connect",
    "read_stream",
    "rpc",
    "rpc_method",
    "signed_up_member",
    "signing_key_of",
    "token_claims",
    "token_expiry",
    "unique_email",
    "unique_event_type",
    "unique_phone",
    "with_client_id",
]
