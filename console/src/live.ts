// One WebSocket per tab to the real-time API. Channels are (re)subscribed after every
// reconnect; frames go to whoever listens for their type.
import type { Config } from "./config";
import type { Session } from "./auth";

export type Frame = { type: string; simulated?: boolean } & Record<string, unknown>;

/**
 * Whether `frame` is the socket's word that `channel` is now subscribed. Events before
 * it were not sent to this tab (a page's first answer races its subscription, and a
 * reconnect loses what passed meanwhile), so a page reads its state again on it.
 */
export function nowSubscribed(frame: Frame, channel: string): boolean {
  return frame.type === "subscribed" && Array.isArray(frame.channels) && frame.channels.includes(channel);
}
type Listener = (frame: Frame) => void;

export class Live {
  private socket: WebSocket | null = null;
  private readonly channels = new Set<string>();
  private readonly listeners = new Set<Listener>();
  private retry = 0;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly session: () => Session | null,
  ) {}

  connect(): void {
    const session = this.session();
    if (!session || this.closed) return;
    const url = `${this.config.realtimeUrl}?token=${encodeURIComponent(session.accessToken)}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.retry = 0;
      this.send();
    };
    socket.onmessage = (message) => {
      const frame = JSON.parse(String(message.data)) as Frame;
      for (const listener of this.listeners) listener(frame);
    };
    socket.onclose = () => {
      if (this.closed) return;
      // Back off up to 30 s; a refused token stays refused until the next sign-in.
      const delay = Math.min(30_000, 500 * 2 ** this.retry++);
      setTimeout(() => this.connect(), delay);
    };
  }

  /** Listen to every frame; returns the way to stop. */
  listen(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The channels this tab wants now (a page's whole set; at most 50). */
  want(channels: string[]): void {
    const next = new Set(channels.slice(0, 50));
    const gone = [...this.channels].filter((c) => !next.has(c));
    const added = [...next].filter((c) => !this.channels.has(c));
    this.channels.clear();
    for (const c of next) this.channels.add(c);
    if (this.socket?.readyState === WebSocket.OPEN) {
      if (gone.length) this.socket.send(JSON.stringify({ action: "unsubscribe", channels: gone }));
      if (added.length) this.socket.send(JSON.stringify({ action: "subscribe", channels: added }));
    }
  }

  close(): void {
    this.closed = true;
    this.socket?.close();
  }

  private send(): void {
    if (this.channels.size && this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ action: "subscribe", channels: [...this.channels] }));
    }
  }
}
