// Sign-in through the hosted UI: the authorization-code flow with PKCE on a public client.
// The code verifier and state live in sessionStorage only for the round trip; the tokens
// live in sessionStorage for the tab's life (a new tab signs in again, silently while the
// hosted UI's session lasts).
import type { Config } from "./config";

export type Role = "viewer" | "operator" | "admin";

export interface Session {
  accessToken: string;
  expiresAt: number;
  subject: string;
  username: string;
  role: Role | null;
}

const TOKENS = "hub.tokens";
const PENDING = "hub.pending-sign-in";

function base64url(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let text = "";
  for (const byte of view) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function claims(token: string): Record<string, unknown> {
  const payload = token.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(json) as Record<string, unknown>;
}

/** The highest role the token's scopes grant; only to decide what to offer; the API decides what is allowed. */
export function roleOf(scopes: string[]): Role | null {
  if (scopes.includes("hub/admin")) return "admin";
  if (scopes.includes("hub/operate")) return "operator";
  if (scopes.includes("hub/read")) return "viewer";
  return null;
}

export function may(session: Session | null, role: Role): boolean {
  const order: Role[] = ["viewer", "operator", "admin"];
  return !!session?.role && order.indexOf(session.role) >= order.indexOf(role);
}

function sessionFrom(accessToken: string): Session {
  const c = claims(accessToken);
  const scopes = String(c.scope ?? "").split(/\s+/);
  return {
    accessToken,
    expiresAt: Number(c.exp ?? 0) * 1000,
    subject: String(c.sub ?? ""),
    username: String(c.username ?? c.sub ?? ""),
    role: roleOf(scopes),
  };
}

export function currentSession(): Session | null {
  const stored = sessionStorage.getItem(TOKENS);
  if (!stored) return null;
  const session = sessionFrom(stored);
  // A minute's margin: a request must not leave with a token about to lapse.
  return session.expiresAt - 60_000 > Date.now() ? session : null;
}

export async function signIn(config: Config): Promise<never> {
  const verifier = randomString(48);
  const state = randomString(16);
  const challenge = base64url(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)),
  );
  sessionStorage.setItem(
    PENDING,
    JSON.stringify({ verifier, state, view: location.hash }),
  );
  const url = new URL(`${config.authUrl}/oauth2/authorize`);
  url.search = new URLSearchParams({
    client_id: config.clientId,
    response_type: "code",
    redirect_uri: config.redirectUri,
    scope: "openid",
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
  return new Promise<never>(() => {});
}

/**
 * Back from the hosted UI: exchanges the code (checked against the state this tab sent)
 * and returns the URL of the view the sign-in started from; null when this page load is
 * no return from the hosted UI.
 */
export async function completeSignIn(config: Config): Promise<string | null> {
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const error = params.get("error");
  if (!code && !error) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as
    | { verifier: string; state: string; view: string }
    | null;
  sessionStorage.removeItem(PENDING);
  if (error) throw new Error(`sign-in refused: ${error} ${params.get("error_description") ?? ""}`);
  if (!pending || params.get("state") !== pending.state) {
    throw new Error("sign-in answer does not belong to this tab");
  }
  const response = await fetch(`${config.authUrl}/oauth2/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.clientId,
      code: code!,
      redirect_uri: config.redirectUri,
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`code exchange: ${response.status} ${await response.text()}`);
  const tokens = (await response.json()) as { access_token: string };
  sessionStorage.setItem(TOKENS, tokens.access_token);
  // The view (a hash route) the sign-in started from, without the code and state.
  return `${location.pathname}${pending.view}`;
}

export function signOut(config: Config): void {
  sessionStorage.removeItem(TOKENS);
  const url = new URL(`${config.authUrl}/logout`);
  url.search = new URLSearchParams({ client_id: config.clientId, logout_uri: config.redirectUri }).toString();
  location.assign(url.toString());
}
