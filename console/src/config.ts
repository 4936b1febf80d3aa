// Where the console's services are, written beside the console's files at deploy time
// (`config.json`), so one build serves every stack.
export interface Config {
  /** Base of the admin API; empty when it is served on the console's own origin. */
  apiUrl: string;
  /** The WebSocket API's stage URL (`wss://…/live`, locally `ws://…/live`). */
  realtimeUrl: string;
  /** The hosted UI's base (`https://{domain}.auth.{region}.amazoncognito.com`). */
  authUrl: string;
  /** The console's public app client. */
  clientId: string;
  /** Where the hosted UI returns to: the console's own root URL. */
  redirectUri: string;
}

export async function loadConfig(): Promise<Config> {
  const response = await fetch("/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json: ${response.status}`);
  const config = (await response.json()) as Partial<Config>;
  for (const key of ["realtimeUrl", "authUrl", "clientId", "redirectUri"] as const) {
    if (typeof config[key] !== "string" || !config[key]) {
      throw new Error(`config.json lacks ${key}`);
    }
  }
  return { apiUrl: "", ...config } as Config;
}
