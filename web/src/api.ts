// The public API through the gateway, over grpc-web, with clients generated from protos/
// (src/gen, by `make protos`). Every call carries the console's client id; signed-in calls
// carry the access token, renewed once when it has expired.
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import { AuthService } from "./gen/cumulo/auth/v1/auth_pb";
import { BlobService, ShareLinkService } from "./gen/cumulo/blob/v1/blob_pb";
import { LifecycleService } from "./gen/cumulo/lifecycle/v1/lifecycle_pb";
import { ComplaintService, ModerationService } from "./gen/cumulo/moderation/v1/moderation_pb";
import { DeviceLocatorService } from "./gen/cumulo/locator/v1/locator_pb";
import { BackupService, SyncService } from "./gen/cumulo/sync/v1/sync_pb";
import { TakeoutService } from "./gen/cumulo/takeout/v1/takeout_pb";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb";
import { session } from "./session";
import { gatewayTransport } from "./transport";

const withToken: Interceptor = (next) => async (request) => {
  const token = await session.accessToken();
  if (token) request.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(request);
  } catch (error) {
    // Expired, or cut off by a change of the account (its roles): a refresh may cure it; a
    // session that ended answers the refresh with SESSION_REVOKED, which signs out below.
    if (token && ["TOKEN_EXPIRED", "TOKEN_REVOKED"].includes(reasonOf(error) ?? "")) {
      const renewed = await session.accessToken({ renew: true });
      if (renewed) {
        request.header.set("authorization", `Bearer ${renewed}`);
        return next(request);
      }
    }
    if (token && ["SESSION_REVOKED", "SESSION_EXPIRED", "REFRESH_TOKEN_REUSED"].includes(reasonOf(error) ?? "")) {
      session.signedOut();
    }
    throw error;
  }
};

const transport = gatewayTransport([withToken]);

function client<T extends DescService>(service: T): Client<T> {
  return createClient(service, transport);
}

export const auth = client(AuthService);
export const blob = client(BlobService);
export const links = client(ShareLinkService);
export const lifecycle = client(LifecycleService);
export const complaints = client(ComplaintService);
export const moderation = client(ModerationService);
export const locator = client(DeviceLocatorService);
export const sync = client(SyncService);
export const backups = client(BackupService);
export const takeout = client(TakeoutService);

/** The error's reason (google.rpc.ErrorInfo), as every cumulo service sends it. */
export function reasonOf(error: unknown): string | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  return error.findDetails(ErrorInfoSchema)[0]?.reason;
}

/** The fields a request got wrong and why (google.rpc.BadRequest). */
export function fieldErrors(error: unknown): Record<string, string> {
  const found: Record<string, string> = {};
  if (error instanceof ConnectError) {
    for (const detail of error.findDetails(BadRequestSchema)) {
      for (const violation of detail.fieldViolations) found[violation.field] = violation.description;
    }
  }
  return found;
}

/** Seconds to wait before trying again, when the service says. */
export function retryAfter(error: unknown): number | undefined {
  if (!(error instanceof ConnectError)) return undefined;
  const delay = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay ? Number(delay.seconds) + delay.nanos / 1e9 : undefined;
}

/** What to show a person: the service's own message (never a secret: services keep them out). */
export function messageOf(error: unknown): string {
  if (error instanceof ConnectError) {
    if (error.code === Code.Unavailable) return "unavailable";
    return error.rawMessage || error.message;
  }
  return String(error);
}
