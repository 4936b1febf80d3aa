// A rollout started from the console moves live: the canary's device finishes alone,
// the rest follow when the job releases them, and the page shows each step without a
// reload. The devices are the simulator's, taking the job over MQTT; what they end on is
// checked through the API, not through the page.
import { writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { expect, test } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { hubAdmin, person, serveFleet, signIn, unique } from "./stack";

const DEVICES = 4;

test("a rollout started from the page moves live, canary first, to every device", async ({ page }, info) => {
  test.setTimeout(240_000);
  const group = unique("pw-ota");
  const version = unique("2.0.0-pw");
  const fleet = await serveFleet(unique("pw-ota"), group, DEVICES, "environment-sensor");
  try {
    const image = info.outputPath("firmware.bin");
    writeFileSync(image, randomBytes(64 * 1024));
    hubAdmin(["firmware", "add", image, "--version", version, "--type", "environment-sensor"]);

    await signIn(page, person("admin"), "/rollouts");
    await expect(page.getByRole("heading", { name: "Firmware and rollouts" })).toBeVisible();
    // Every progress the page renders, from inside it: also proof it never reloads.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { progressSeen: string[] }).progressSeen = seen;
      const note = () => {
        for (const row of document.querySelectorAll("tr[data-rollout]")) {
          const text = `${row.getAttribute("data-rollout")} ${row.querySelector(".rollout-status")?.textContent} ${row.querySelector(".progress")?.getAttribute("data-succeeded")}`;
          if (!seen.includes(text)) seen.push(text);
        }
      };
      new MutationObserver(note).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });

    const form = page.getByRole("region", { name: "Start a rollout" });
    await form.getByLabel("Firmware").selectOption(version);
    await form.getByLabel("Thing group").fill(group);
    await form.getByLabel("Canary %").fill("25");
    await form.getByRole("button", { name: "Start rollout" }).click();

    const row = page.locator("tr[data-rollout]", { hasText: group });
    await expect(row).toHaveCount(1);
    const id = (await row.getAttribute("data-rollout"))!;
    const progress = row.locator(".progress");
    // One device of four is the canary; the rest wait for the job's next release.
    await expect(progress).toHaveAttribute("data-succeeded", "1", { timeout: 60_000 });
    await page.screenshot({ path: info.outputPath("rollout-canary.png"), fullPage: true });
    await expect(progress).toHaveAttribute("data-succeeded", String(DEVICES), { timeout: 180_000 });
    await expect(row.locator(".rollout-status")).toHaveText("completed");

    const seen = await page.evaluate(() => (window as unknown as { progressSeen?: string[] }).progressSeen);
    const mine = (seen ?? []).filter((s) => s.startsWith(`${id} `));
    console.log(`rollout ${id} as the page showed it: ${mine.join(" | ")}`);
    expect(mine).toContain(`${id} in_progress 1`);
    expect(mine.at(-1)).toBe(`${id} completed ${DEVICES}`);

    // Each device, on the rollout's own page (reached by the link, still no reload).
    await row.getByRole("link", { name: id }).click();
    await expect(page.getByRole("heading", { name: `Rollout ${id}` })).toBeVisible();
    await expect(page.locator("tr[data-state=succeeded]")).toHaveCount(DEVICES);
    expect(await page.evaluate(() => Array.isArray((window as unknown as { progressSeen?: unknown }).progressSeen))).toBe(true);
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id)).toEqual([]);
    await page.screenshot({ path: info.outputPath("rollout.png"), fullPage: true });

    // What the registry holds, independently of the page.
    const listed = JSON.parse(hubAdmin(["list", "--group", group])) as { devices: { firmware_version: string }[] };
    expect(listed.devices.map((d) => d.firmware_version)).toEqual(Array(DEVICES).fill(version));
  } finally {
    await fleet.stop();
  }
});
