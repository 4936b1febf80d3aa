// The admin API with the signed-in person's token. Errors keep the API's own message.
import type { Config } from "./config";
import type { Session } from "./auth";

const REQUEST_TIMEOUT_MS = 30_000;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Answer<T> {
  body: T;
  /** The API marks answers about simulated devices' data (`X-Data-Source: simulation`). */
  simulated: boolean;
}

export class Api {
  constructor(
    private readonly config: Config,
    private readonly session: Session,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<Answer<T>> {
    const response = await fetch(`${this.config.apiUrl}${path}`, {
      method,
      // A request that hangs says so instead of leaving the page waiting forever.
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      headers: {
        authorization: `Bearer ${this.session.accessToken}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).catch((error: unknown) => {
      const timedOut = error instanceof DOMException && error.name === "TimeoutError";
      throw new ApiError(0, timedOut ? `${method} ${path}: no answer in ${REQUEST_TIMEOUT_MS / 1000} s` : `${method} ${path}: ${String(error)}`);
    });
    const text = await response.text();
    const parsed = text ? (JSON.parse(text) as unknown) : null;
    if (!response.ok) {
      const message =
        (parsed as { message?: string } | null)?.message ?? `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message);
    }
    return {
      body: parsed as T,
      simulated: response.headers.get("x-data-source") === "simulation",
    };
  }

  get<T>(path: string): Promise<Answer<T>> {
    return this.call<T>("GET", path);
  }
}

export interface Device {
  device_id: string;
  device_type: string;
  status: string;
  group?: string;
  firmware_version?: string;
  quarantined: boolean;
  simulated: boolean;
  connectivity?: string;
  last_seen?: string;
  latest?: Reading | null;
}

export interface Reading {
  ts: string;
  seq?: number;
  metrics: Record<string, number>;
}

export interface FleetSummary {
  as_of: string;
  devices: number;
  in_service: number;
  quarantined: number;
  simulated: number;
  by_status: Record<string, number>;
  by_connectivity: Record<string, number>;
  by_firmware_version: Record<string, number>;
  by_type: Record<string, number>;
}

export interface Page<T> {
  devices: T[];
  next_token: string | null;
}
