// An operator signs in through the hosted UI and finds the simulated fleet, marked as
// simulated; a reading a device publishes over Mosquitto reaches its row and its chart
// without a reload. What should appear is what the simulator was told to send.
import { expect, test } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { person, signIn, simulate, unique } from "./stack";

async function accessible(page: import("@playwright/test").Page, what: string) {
  const result = await new AxeBuilder({ page }).analyze();
  const grave = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(grave.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`), `${what}: accessibility`).toEqual([]);
}

test("an operator signs in and the fleet page lists the simulated fleet with the watermark", async ({ page }, info) => {
  const group = unique("pw-group");
  const ids = simulate(unique("pw-sim"), group, 4, 2);
  const operator = person("operator");

  await signIn(page, operator);
  await expect(page.getByRole("heading", { name: "Fleet" })).toBeVisible();
  await page.getByLabel("Group").fill(group);
  await page.getByLabel("Group").press("Enter");
  const rows = page.locator("table.devices tbody tr");
  await expect(rows).toHaveCount(ids.length);
  for (const id of ids) {
    const row = page.locator(`tr[data-device="${id}"]`);
    await expect(row).toBeVisible();
    await expect(row.getByText("simulated")).toBeVisible();
  }
  await expect(page.getByTestId("simulation-watermark")).toBeVisible();
  await accessible(page, "fleet");
  await page.screenshot({ path: info.outputPath("fleet.png"), fullPage: true });
});

test("a reading published over Mosquitto appears on the device's row and chart without a reload", async ({ page }, info) => {
  const group = unique("pw-live");
  const prefix = unique("pw-live");
  const [id] = simulate(prefix, group, 1, 1);
  const viewer = person("viewer");
  await signIn(page, viewer, `/devices/${id}`);
  await expect(page.getByRole("heading", { name: id })).toBeVisible();
  const chart = page.locator(".chart").first();
  await expect(chart).toBeVisible();
  const before = Number(await chart.getAttribute("data-points"));

  // The same device publishes again, over Mosquitto, while the page stays open.
  const published = Date.now();
  simulate(prefix, group, 1, 3, 2);
  await expect.poll(async () => Number(await chart.getAttribute("data-points"))).toBeGreaterThan(before);
  const shownAt = Number(await chart.getAttribute("data-updated-at"));
  // An upper bound: it includes the simulator's start, provisioning check and TLS handshake.
  console.log(`simulator start -> point on the chart: ${shownAt - published} ms`);
  await expect(page.getByTestId("simulation-watermark")).toBeVisible();
  await accessible(page, "device");
  await page.screenshot({ path: info.outputPath("device.png"), fullPage: true });
});

test("a viewer is offered no write controls, and a write crafted from the viewer's session is refused", async ({ page }, info) => {
  const [id] = simulate(unique("pw-ro"), unique("pw-ro"), 1, 1);
  // Positive control: an operator is offered the control on the same page.
  const operator = person("operator");
  await signIn(page, operator, `/devices/${id}`);
  await expect(page.getByRole("button", { name: "Quarantine" })).toBeVisible();
  await page.context().clearCookies();
  await page.evaluate(() => sessionStorage.clear());

  const viewer = person("viewer");
  const fresh = await page.context().browser()!.newContext();
  const viewing = await fresh.newPage();
  await signIn(viewing, viewer, `/devices/${id}`);
  await expect(viewing.getByRole("heading", { name: id })).toBeVisible();
  await expect(viewing.getByText("Registry")).toBeVisible();
  await expect(viewing.getByRole("region", { name: "Commands" })).toBeVisible();
  await expect(viewing.getByRole("button", { name: /quarantine|send command|set desired|revoke|api key/i })).toHaveCount(0);
  await viewing.goto("/#/alerts");
  await expect(viewing.getByRole("heading", { name: "Alerts" })).toBeVisible();
  await expect(viewing.getByRole("button", { name: /acknowledge|resolve|add rule|delete/i })).toHaveCount(0);
  await viewing.goto("/#/rollouts");
  await expect(viewing.getByRole("heading", { name: "Firmware and rollouts" })).toBeVisible();
  await expect(viewing.getByRole("button", { name: /start rollout|cancel/i })).toHaveCount(0);

  // The API holds the line whatever the page offers.
  const status = await viewing.evaluate(async (device) => {
    const token = sessionStorage.getItem("hub.tokens");
    const response = await fetch(`/v1/devices/${encodeURIComponent(device)}/quarantine`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}` },
    });
    return response.status;
  }, id);
  expect(status).toBe(403);
  await accessible(viewing, "alerts");
  await viewing.screenshot({ path: info.outputPath("alerts-viewer.png"), fullPage: true });
  await fresh.close();
});
