// Browser tests against the running local stack (its console URL from stack.env), in
// Debian's Chromium. Screenshots of every page land in test-results/.
import { defineConfig } from "@playwright/test";

const consoleUrl = process.env.HUB_CONSOLE_URL;
if (!consoleUrl) throw new Error("HUB_CONSOLE_URL is not set: source the stack's stack.env");

export default defineConfig({
  testDir: "tests",
  outputDir: "test-results",
  timeout: 120_000,
  expect: { timeout: 20_000 },
  workers: 1,
  reporter: [["list"]],
  globalSetup: "./tests/global-setup.ts",
  use: {
    baseURL: consoleUrl,
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.HUB_CHROMIUM ?? "/usr/bin/chromium",
      // The machine has no network beyond loopback: nothing in the background may call out.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
