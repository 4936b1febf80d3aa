// The fleet page with 1,000 simulated devices: how long the first page and every later
// one take to show, and how the page holds up while all 1,000 devices publish (long
// tasks on the main thread, and a page turn's time while readings stream in).
// The device ids are fixed, so the simulator's certificates are made once and kept.
import { spawn } from "node:child_process";
import path from "node:path";
import { test, expect, type Page } from "@playwright/test";
import { person, signIn, simulate } from "../tests/stack";
import { describe } from "./figures";

const DEVICES = 1000;
const GROUP = "bench-fleet";
const PAGE_SIZE = 48;
const root = path.resolve(import.meta.dirname, "..", "..");
const hubSim = path.join(process.env.CARGO_TARGET_DIR ?? path.join(root, "target"), "debug", "hub-sim");

/** Clicks Next and waits until the first row is another device; milliseconds taken. */
async function turn(page: Page): Promise<number> {
  const first = await page.locator("table.devices tbody tr").first().getAttribute("data-device");
  const started = Date.now();
  await page.getByRole("button", { name: "Next" }).click();
  await expect(page.locator("table.devices tbody tr").first()).not.toHaveAttribute("data-device", first!);
  return Date.now() - started;
}

test("the fleet page with 1,000 devices", async ({ page }) => {
  simulate(GROUP, GROUP, DEVICES, 1, 500);
  await signIn(page, person("viewer"));
  await page.evaluate(() => {
    const long: number[] = [];
    (window as unknown as { longTasks: number[] }).longTasks = long;
    new PerformanceObserver((list) => list.getEntries().forEach((e) => long.push(e.duration))).observe({ type: "longtask", buffered: true });
  });

  let started = Date.now();
  await page.getByLabel("Group").fill(GROUP);
  await page.getByLabel("Group").press("Enter");
  await expect(page.locator("table.devices tbody tr")).toHaveCount(PAGE_SIZE);
  const firstPage = Date.now() - started;

  // Every page, quietly: all 1,000 are listed once each.
  const seen = new Set<string>();
  const quiet: number[] = [];
  for (;;) {
    for (const id of await page.locator("table.devices tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-device")!))) seen.add(id);
    if (await page.getByRole("button", { name: "Next" }).isDisabled()) break;
    quiet.push(await turn(page));
  }
  expect(seen.size).toBe(DEVICES);
  await page.getByLabel("Group").press("Enter");
  await expect(page.locator("table.devices tbody tr")).toHaveCount(PAGE_SIZE);

  // Now the whole fleet publishes for 40 s while the page is turned every 2 s.
  const streaming = spawn(
    hubSim,
    ["--devices", String(DEVICES), "--duration", "40", "--rate", "500", "--prefix", GROUP, "--group", GROUP, "--heartbeat-every", "0"],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const ended = new Promise((resolve) => streaming.once("exit", resolve));
  await page.waitForTimeout(8000);
  const rowsBefore = await page.locator("table.devices tbody tr").first().innerText();
  const busy: number[] = [];
  const longBefore = await page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks.length);
  started = Date.now();
  while (Date.now() - started < 24_000) {
    busy.push(await turn(page));
    await page.waitForTimeout(2000);
    if (await page.getByRole("button", { name: "Next" }).isDisabled()) {
      await page.getByLabel("Group").press("Enter");
      await page.waitForTimeout(500);
    }
  }
  const long = await page.evaluate((from) => (window as unknown as { longTasks: number[] }).longTasks.slice(from), longBefore);
  await ended;
  console.log(`first page of ${PAGE_SIZE} of ${DEVICES} devices shown in ${firstPage} ms`);
  console.log(describe("page turn, quiet", quiet));
  console.log(describe("page turn, 1,000 devices publishing 500 readings/s", busy));
  console.log(
    `main-thread tasks over 50 ms while publishing (${((Date.now() - started) / 1000).toFixed(0)} s): ${long.length}, longest ${Math.max(0, ...long).toFixed(0)} ms, total ${long.reduce((a, b) => a + b, 0).toFixed(0)} ms`,
  );
  console.log(`a row before the stream: ${rowsBefore.replace(/\s+/g, " ")}`);
});
