// An injected anomaly's alert appears live on two open consoles; one acknowledges it, and
// the other sees it leave its open alerts without a reload.
import { expect, test } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { hubAdmin, person, signIn, simulate, unique } from "./stack";

test("an injected anomaly's alert appears live, is acknowledged on one console and leaves the other's open list", async ({ browser }, info) => {
  const prefix = unique("pw-hot");
  const group = unique("pw-hot");
  // Registered first, quietly: one environment sensor (the simulator's first type).
  const [id] = simulate(prefix, group, 1, 1);
  // The condition the simulator's injected anomalies of this type break and its normal
  // readings never do.
  hubAdmin(["alerts", "add-rule", "--device-id", id, "temperature > 40", "--severity", "critical"]);

  const first = await browser.newContext();
  const second = await browser.newContext();
  const [a, b] = [await first.newPage(), await second.newPage()];
  await signIn(a, person("operator"), "/alerts");
  await signIn(b, person("operator"), "/alerts");
  for (const page of [a, b]) await expect(page.getByRole("heading", { name: "Alerts" })).toBeVisible();
  // The detector reads its rules at most every 2 s.
  await a.waitForTimeout(3000);

  // Every reading may start an anomaly episode.
  simulate(prefix, group, 1, 8, 4, ["--anomalies", "1"]);
  const rowA = a.locator(`tr[data-device="${id}"]`);
  const rowB = b.locator(`tr[data-device="${id}"]`);
  await expect(rowA).toBeVisible({ timeout: 60_000 });
  await expect(rowB).toBeVisible({ timeout: 60_000 });
  await expect(a.getByTestId("simulation-watermark")).toBeVisible();
  const results = await new AxeBuilder({ page: a }).analyze();
  expect(results.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id)).toEqual([]);
  await a.screenshot({ path: info.outputPath("alerts.png"), fullPage: true });

  await rowA.getByRole("button", { name: "Acknowledge" }).click();
  await expect(rowB).toHaveCount(0, { timeout: 30_000 });
  await b.getByRole("tab", { name: "acknowledged" }).click();
  await expect(b.locator(`tr[data-device="${id}"] .state`)).toContainText("acknowledged by");
  await first.close();
  await second.close();
});
