// Device publish -> value shown in the browser. One simulated device publishes a reading
// a second over Mosquitto (one a second, so the pusher's per-device-per-second
// thinning keeps every one); the device page notes, for each point it draws, when it drew
// it. Latency is that moment minus the reading's device timestamp (same machine clock).
// The simulator stamps reading n at start + n s and sends it no earlier, so each figure
// is an upper bound: it includes the device's connect time before its first reading.
// Goal: p95 <= 1 s on the local stack.
import { test, expect } from "@playwright/test";
import { person, signIn, simulate, unique } from "../tests/stack";
import { describe } from "./figures";

const READINGS = Number(process.env.HUB_BENCH_READINGS ?? 60);

test("publish to browser latency", async ({ page }) => {
  const prefix = unique("bench-lat");
  const group = unique("bench-lat");
  const [id] = simulate(prefix, group, 1, 1);
  await signIn(page, person("viewer"), `/devices/${id}`);
  const chart = page.locator(".chart").first();
  await expect(chart).toBeVisible();
  await page.evaluate(() => {
    const drawn: [string, number][] = [];
    (window as unknown as { drawn: typeof drawn }).drawn = drawn;
    const chart = document.querySelector(".chart")!;
    new MutationObserver(() => {
      const ts = chart.getAttribute("data-last-ts");
      const at = Number(chart.getAttribute("data-updated-at"));
      if (ts && at && !drawn.some(([seen]) => seen === ts)) drawn.push([ts, at]);
    }).observe(chart, { attributes: true, attributeFilter: ["data-updated-at"] });
  });

  simulate(prefix, group, 1, READINGS, 1);
  await page.waitForTimeout(3000);
  const drawn = await page.evaluate(() => (window as unknown as { drawn: [string, number][] }).drawn);
  const latencies = drawn.map(([ts, at]) => at - Date.parse(ts));
  console.log(describe(`device timestamp -> chart, an upper bound (${drawn.length} of ${READINGS} readings drawn)`, latencies));
  expect(drawn.length).toBeGreaterThan(0);
});
