"""Which identity may call which method: the one allow-list of the cluster (the README's
"Who may call what" table is this dict; a test keeps them equal).

- The public services (what the gateway routes) are called by the gateway alone: people
  reach them through it, with their access token.
- Each internal method names its callers. A method not listed is refused to everybody:
  a new internal method is closed until someone writes here who needs it.
- The gateway is never a caller of an internal method.
- Health checks and reflection answer any identity of the internal CA.

A refused call is PERMISSION_DENIED `CALLER_NOT_ALLOWED`, naming the caller and the method,
and logged as `rpc_caller_refused`."""

from __future__ import annotations

from cumulo_platform.identity import GATEWAY, OPERATOR

# Services that verify access tokens themselves, with auth's keys and client registry.
_VERIFIERS = frozenset({"blob", "lifecycle", "sync", "locator", "moderation"})
# Services whose callers' accounts pass the lifecycle's gate (a frozen account is reactivated).
_GATED = frozenset({"auth", "blob", "sync", "locator", "moderation"})

INTERNAL_CALLERS: dict[str, frozenset[str]] = {
    # auth: keys and client apps for token checks; accounts for the services that act on them
    "/cumulo.auth.v1.AuthInternalService/GetSigningKeys": _VERIFIERS,
    "/cumulo.auth.v1.AuthInternalService/GetClientApp": _VERIFIERS,
    "/cumulo.auth.v1.AuthInternalService/RegisterClientApp": frozenset({OPERATOR}),
    "/cumulo.auth.v1.AuthInternalService/SetAccountStatus": frozenset({"moderation"}),
    "/cumulo.auth.v1.AuthInternalService/GetAccountContacts": frozenset({"lifecycle", "moderation"}),
    "/cumulo.auth.v1.AuthInternalService/FindAccount": frozenset({"blob", "moderation", OPERATOR}),
    "/cumulo.auth.v1.AuthInternalService/SetAccountRoles": frozenset({OPERATOR}),
    "/cumulo.auth.v1.AuthInternalService/RotateSigningKey": frozenset({OPERATOR}),
    # blob: moderation's decisions, sync's backups, the operator's plans
    "/cumulo.blob.v1.BlobInternalService/BlockFile": frozenset({"moderation"}),
    "/cumulo.blob.v1.BlobInternalService/UnblockFile": frozenset({"moderation"}),
    "/cumulo.blob.v1.BlobInternalService/BlockLink": frozenset({"moderation"}),
    "/cumulo.blob.v1.BlobInternalService/BlockContent": frozenset({"moderation"}),
    "/cumulo.blob.v1.BlobInternalService/FindContent": frozenset({"moderation"}),
    "/cumulo.blob.v1.BlobInternalService/DescribePaths": frozenset({"moderation"}),
    "/cumulo.blob.v1.BlobInternalService/ExportFiles": frozenset({"moderation"}),
    "/cumulo.blob.v1.BlobInternalService/DescribeFiles": frozenset({"sync"}),
    "/cumulo.blob.v1.BlobInternalService/DeleteFiles": frozenset({"sync", "moderation"}),
    "/cumulo.blob.v1.BlobInternalService/PurgeAccount": frozenset({"lifecycle"}),
    "/cumulo.blob.v1.BlobInternalService/RecordPurchase": frozenset({OPERATOR}),
    "/cumulo.blob.v1.BlobInternalService/SetPlanPrice": frozenset({OPERATOR}),
    # the lifecycle: the account gate for every service, legal holds, the operator's reports
    "/cumulo.lifecycle.v1.LifecycleInternalService/EnsureActive": _GATED,
    "/cumulo.lifecycle.v1.LifecycleInternalService/GetAccount": frozenset({"moderation", OPERATOR}),
    "/cumulo.lifecycle.v1.LifecycleInternalService/ListAccounts": frozenset({OPERATOR}),
    "/cumulo.lifecycle.v1.LifecycleInternalService/GetReport": frozenset({OPERATOR}),
    "/cumulo.lifecycle.v1.LifecycleInternalService/SetLegalHold": frozenset({"moderation", OPERATOR}),
    "/cumulo.lifecycle.v1.LifecycleInternalService/Sweep": frozenset({OPERATOR}),
    "/cumulo.lifecycle.v1.LifecycleInternalService/ListPurges": frozenset({OPERATOR}),
    "/cumulo.lifecycle.v1.LifecycleInternalService/SendVerificationCode": frozenset({"auth"}),
    "/cumulo.lifecycle.v1.LifecycleInternalService/Announce": frozenset({OPERATOR}),
    "/cumulo.lifecycle.v1.LifecycleInternalService/GetAnnouncement": frozenset({OPERATOR}),
    # evidence, served by every service that keeps a person's data: moderation's bundles only
    "/cumulo.evidence.v1.EvidenceInternalService/ExportAccount": frozenset({"moderation"}),
    # take-out, served by the same services: blob writes the owner's archive
    "/cumulo.takeout.v1.TakeoutInternalService/ExportPart": frozenset({"blob"}),
}

PUBLIC_CALLERS = frozenset({GATEWAY})
# Any identity of the internal CA: health checks (Kubernetes uses the plaintext health port)
# and reflection (grpcurl from an operator's shell).
OPEN_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def allowed_callers(method: str) -> frozenset[str] | None:
    """Who may call `method` (a full path, "/package.Service/Method"); None: anyone holding
    an identity of the internal CA."""
    if method.startswith(OPEN_PREFIXES):
        return None
    service = method.split("/")[1] if method.count("/") >= 2 else ""
    if service.endswith("InternalService"):
        return INTERNAL_CALLERS.get(method, frozenset())
    return PUBLIC_CALLERS


def readme_table() -> str:
    """The allow-list as the README shows it."""
    rows = ["| method | who may call it |", "|---|---|"]
    for method, callers in INTERNAL_CALLERS.items():
        rows.append(f"| `{method.lstrip('/').replace('/', '.')}` | {', '.join(sorted(callers))} |")
    rows.append(f"| every method of the public services | {', '.join(sorted(PUBLIC_CALLERS))} |")
    return "\n".join(rows)
