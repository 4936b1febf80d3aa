// The local stack as the browser tests use it: people made with hub-admin, a simulated
// fleet from hub-sim, both through the project's own commands.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Page } from "@playwright/test";

const root = path.resolve(import.meta.dirname, "..", "..");
const bin = (name: string) => path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "debug", name);

export const PASSWORD = "Console-pass-2026";

export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** Runs `hub-admin` with the stack's settings (from stack.env); what it printed. */
export function hubAdmin(args: string[], input?: string): string {
  return execFileSync(bin("hub-admin"), args, {
    input,
    encoding: "utf8",
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "inherit"],
  });
}

/** A person in `role` with a set password, made by `hub-admin user add`. */
export function person(role: "viewer" | "operator" | "admin"): string {
  const name = unique(`pw-${role}`);
  hubAdmin(["user", "add", name, "--role", role, "--password-stdin", "--permanent"], `${PASSWORD}\n`);
  return name;
}

/** Runs the simulator: `devices` devices in a group of their own, `messages` readings each. */
export function simulate(
  prefix: string,
  group: string,
  devices: number,
  messages: number,
  rate = 20,
  extra: string[] = [],
): string[] {
  execFileSync(
    bin("hub-sim"),
    [
      "--devices", String(devices), "--messages", String(messages), "--rate", String(rate),
      "--prefix", prefix, "--group", group, "--heartbeat-every", "0", ...extra,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  return Array.from({ length: devices }, (_, i) => `${prefix}-${String(i).padStart(4, "0")}`);
}

/**
 * Starts `devices` simulated devices of one type in `group` that stay connected, taking
 * firmware jobs, until stopped; resolves once they are registered (the simulator says
 * it is sending).
 */
export async function serveFleet(prefix: string, group: string, devices: number, deviceType: string): Promise<ServedFleet> {
  const child = spawn(
    bin("hub-sim"),
    [
      "--devices", String(devices), "--device-type", deviceType, "--messages", "1",
      "--prefix", prefix, "--group", group, "--heartbeat-every", "0", "--linger", "600",
    ],
    { stdio: ["ignore", "inherit", "pipe"] },
  );
  await new Promise<void>((resolve, reject) => {
    let said = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      said += chunk.toString();
      if (said.includes("sending ")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`hub-sim ended (${code}) before its devices were registered`)));
  });
  return new ServedFleet(child);
}

export class ServedFleet {
  private readonly ended: Promise<void>;
  constructor(private readonly child: ChildProcess) {
    this.ended = new Promise((resolve) => child.once("exit", () => resolve()));
  }

  /** Disconnects the devices and waits until the simulator has ended. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null) this.child.kill("SIGINT");
    await this.ended;
  }
}

/** Signs in through the hosted UI, as a person does, and waits for the console. */
export async function signIn(page: Page, name: string, view = "/"): Promise<void> {
  await page.goto(view === "/" ? "/" : `/#${view}`);
  await page.locator("#username").fill(name);
  await page.locator("#password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("banner").getByText(name).waitFor();
}
