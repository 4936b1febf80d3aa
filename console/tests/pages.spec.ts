// Every page, as an admin sees it (every control offered): no serious or critical
// accessibility violation, no breach of the page's content security policy, and a
// screenshot kept in test-results/. Then the policy itself: it refuses what the console
// never does.
import { expect, test } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { person, signIn, simulate, unique } from "./stack";

test("every page passes the accessibility check and is kept as a screenshot", async ({ page }, info) => {
  const [id] = simulate(unique("pw-pages"), unique("pw-pages"), 1, 2);
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { violations: string[] }).violations = seen;
    document.addEventListener("securitypolicyviolation", (e) => seen.push(`${e.effectiveDirective} ${e.blockedURI}`));
  });
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
  const violations = () => page.evaluate(() => (window as unknown as { violations: string[] }).violations.slice());
  // Every page above read the API and the socket under the policy, and broke none of it.
  expect(await violations(), "the console within its own policy").toEqual([]);

  // The policy arrives with the page, from wherever it is served.
  const policy = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute("content");
  expect(policy).toContain("script-src 'self'");
  // A request to the page's own origin goes; the same file at another origin (the same
  // server named "localhost", which would answer an opaque no-cors request) is refused.
  const reached = await page.evaluate(async () => {
    const attempt = (url: string) => fetch(url, { mode: "no-cors" }).then((r) => `answered ${r.type}`, (e) => `refused: ${e}`);
    const other = new URL("/config.json", location.href);
    other.hostname = "localhost";
    return { own: await attempt("/config.json"), other: await attempt(other.href) };
  });
  expect(reached.own).toBe("answered basic");
  expect(reached.other).toMatch(/^refused/);
  // An injected inline script does not run (without a policy it runs as it is appended).
  const ran = await page.evaluate(async () => {
    const w = window as unknown as { injected?: boolean };
    const script = document.createElement("script");
    script.textContent = "window.injected = true";
    document.head.append(script);
    await new Promise((resolve) => setTimeout(resolve, 100));
    return w.injected === true;
  });
  expect(ran).toBe(false);
  await expect
    .poll(violations)
    .toEqual(expect.arrayContaining([expect.stringMatching(/^connect-src http:\/\/localhost:\d+\/config\.json/), expect.stringMatching(/^script-src-elem inline/)]));
});
