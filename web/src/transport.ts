// The gateway's grpc-web transport, the console's client id on every call: one place for both
// the API's clients (api.ts) and the session's refresh (session.ts).
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

export const CLIENT_ID = "cumulo-web";

const withClientId: Interceptor = (next) => async (request) => {
  request.header.set("x-cumulo-client-id", CLIENT_ID);
  return next(request);
};

export function gatewayTransport(interceptors: Interceptor[] = []): Transport {
  return createGrpcWebTransport({ baseUrl: window.location.origin, interceptors: [withClientId, ...interceptors] });
}
