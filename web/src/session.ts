// Where the console keeps a signed-in session, and why there.
//
// The tokens live in this origin's localStorage: no other origin can read it, and the strict
// Content-Security-Policy the gateway sends (only this origin's own scripts, no inline code)
// keeps foreign scripts out of this one. Refresh tokens rotate on every use and a reused one
// ends the session, so a copied token stops working at the next refresh of either holder.
// Tabs share the one session: a refresh happens under a Web Lock, and a tab that waited for
// the lock takes the tokens the other tab got instead of presenting a spent one. Signing out
// in one tab removes the tokens, and the `storage` event signs out every other tab.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { AuthService, RefreshRequestSchema, type TokenPair } from "./gen/cumulo/auth/v1/auth_pb";
import { signal } from "./state";
import { gatewayTransport } from "./transport";

const KEY = "cumulo.session";
const LOCK = "cumulo.session.refresh";
const EARLY_MS = 30_000; // renew this long before the access token expires

interface Stored {
  access: string;
  accessExpires: number; // ms since the epoch
  refresh: string;
  sessionId: string;
}

// Refresh has its own client without the token interceptor (it is how a token is made).
const refresher = createClient(AuthService, gatewayTransport());

class Session {
  /** Whether this browser holds a session: pages watch it with `use(session.state)`. */
  readonly state = signal(false);

  constructor() {
    this.state.set(this.signedIn);
    window.addEventListener("storage", (event) => {
      if (event.key === KEY || event.key === null) this.emit();
    });
  }

  private read(): Stored | null {
    try {
      const raw = window.localStorage.getItem(KEY);
      return raw ? (JSON.parse(raw) as Stored) : null;
    } catch {
      return null;
    }
  }

  get signedIn(): boolean {
    return this.read() !== null;
  }

  /** Whether the access token names `role` (what the console shows; the services decide). */
  hasRole(role: string): boolean {
    const access = this.read()?.access;
    if (!access) return false;
    try {
      const claims = JSON.parse(atob(access.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      return Array.isArray(claims.roles) && claims.roles.includes(role);
    } catch {
      return false;
    }
  }

  private emit(): void {
    this.state.set(this.signedIn);
  }

  /** After Login: keep the pair. */
  started(tokens: TokenPair): void {
    this.store(tokens);
    this.emit();
  }

  private store(tokens: TokenPair): void {
    const expires = tokens.accessTokenExpiresAt;
    const stored: Stored = {
      access: tokens.accessToken,
      accessExpires: expires ? Number(expires.seconds) * 1000 : Date.now() + 60_000,
      refresh: tokens.refreshToken,
      sessionId: tokens.sessionId,
    };
    window.localStorage.setItem(KEY, JSON.stringify(stored));
  }

  /** A new access token of the same session (after ConfirmPassword: it carries the time the
   * password was entered, which wiping a device wants). */
  replaceAccess(access: string, expires: Timestamp | undefined): void {
    const now = this.read();
    if (!now) return;
    const accessExpires = expires ? Number(expires.seconds) * 1000 : now.accessExpires;
    window.localStorage.setItem(KEY, JSON.stringify({ ...now, access, accessExpires }));
  }

  /** The tokens are gone (signed out here, in another tab, or the session was ended). */
  signedOut(): void {
    window.localStorage.removeItem(KEY);
    this.emit();
  }

  /** A current access token, renewed first when it is about to expire (or `renew`). */
  async accessToken(options: { renew?: boolean } = {}): Promise<string | null> {
    const seen = this.read();
    if (!seen) return null;
    if (!options.renew && seen.accessExpires - EARLY_MS > Date.now()) return seen.access;
    const run = async (): Promise<string | null> => {
      const now = this.read();
      if (!now) return null;
      if (now.refresh !== seen.refresh) return now.access; // another tab renewed it meanwhile
      try {
        const response = await refresher.refresh(create(RefreshRequestSchema, { refreshToken: now.refresh }));
        if (!response.tokens) throw new Error("no tokens");
        this.store(response.tokens);
        return response.tokens.accessToken;
      } catch (error) {
        // A refused refresh ends the session here; an unreachable gateway does not.
        if (error instanceof ConnectError && error.code !== Code.Unavailable && error.code !== Code.DeadlineExceeded) {
          this.signedOut();
        }
        throw error;
      }
    };
    return navigator.locks ? navigator.locks.request(LOCK, run) : run();
  }
}

export const session = new Session();
