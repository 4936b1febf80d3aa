// The local stack as the browser tests use it: people made with hub-admin, a simulated
// fleet from hub-sim, both through the project's own commands.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import type { Page } from "@playwright/test";

const root = path.resolve(import.meta.dirname, "..", "..");
const bin = (name: string) => path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "debug", name);

export const PASSWORD = "Console-pass-2026";

export function unique(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** A person in `role` with a set password, made by `hub-admin user add`. */
export function person(role: "viewer" | "operator" | "admin"): string {
  const name = unique(`pw-${role}`);
  execFileSync(bin("hub-admin"), ["user", "add", name, "--role", role, "--password-stdin", "--permanent"], {
    input: `${PASSWORD}\n`,
    stdio: ["pipe", "inherit", "inherit"],
  });
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

/** Signs in through the hosted UI, as a person does, and waits for the console. */
export async function signIn(page: Page, name: string, view = "/"): Promise<void> {
  await page.goto(view === "/" ? "/" : `/#${view}`);
  await page.locator("#username").fill(name);
  await page.locator("#password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("banner").getByText(name).waitFor();
}
