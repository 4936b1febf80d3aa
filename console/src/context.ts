import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Config } from "./config";
import type { Session } from "./auth";
import type { Api } from "./api";
import type { Live } from "./live";

export interface Hub {
  config: Config;
  session: Session;
  api: Api;
  live: Live;
}

export const Context = createContext<Hub | null>(null);

export function useHub(): Hub {
  const hub = useContext(Context);
  if (!hub) throw new Error("outside the console");
  return hub;
}
