// Every page, as an admin sees it (every control offered): no serious or critical
// accessibility violation, and a screenshot kept in test-results/.
import { expect, test } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { person, signIn, simulate, unique } from "./stack";

test("every page passes the accessibility check and is kept as a screenshot", async ({ page }, info) => {
  const [id] = simulate(unique("pw-pages"), unique("pw-pages"), 1, 2);
  await signIn(page, person("admin"));
  const pages: [string, string][] = [
    ["fleet", "/"],
    ["device", `/devices/${id}`],
    ["alerts", "/alerts"],
    ["rollouts", "/rollouts"],
    ["audit", "/audit"],
  ];
  for (const [name, view] of pages) {
    await page.goto(`/#${view}`);
    await expect(page.locator("main h1")).toBeVisible();
    await expect(page.getByRole("alert")).toHaveCount(0);
    await page.waitForLoadState("networkidle");
    const results = await new AxeBuilder({ page }).analyze();
    const grave = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    expect(grave.map((v) => `${v.id}: ${v.help}`), `${name}: accessibility`).toEqual([]);
    await page.screenshot({ path: info.outputPath(`${name}.png`), fullPage: true });
  }
});
