// The device page's panels, used as an operator and an admin would: a command answered
// live by a simulated device over MQTT, desired state set and then reported back by the
// device, and an admin's certificates and a new HTTP-ingest key. Outcomes are checked
// outside the page: through hub-admin, and by using the issued key.
import { readFileSync } from "node:fs";
import { expect, test } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { hubAdmin, person, serveFleet, signIn, unique } from "./stack";

test("an operator's command is answered live and desired state comes back reported", async ({ page }, info) => {
  const prefix = unique("pw-cmd");
  const fleet = await serveFleet(prefix, unique("pw-cmd"), 1, "environment-sensor");
  const id = `${prefix}-0000`;
  try {
    await signIn(page, person("operator"), `/devices/${id}`);
    const commands = page.getByRole("region", { name: "Commands" });
    await commands.getByLabel("Command").fill("set_interval");
    await commands.getByLabel("Parameters (JSON)").fill('{"seconds": 30}');
    await commands.getByRole("button", { name: "Send command" }).click();
    const row = commands.locator("tbody tr").first();
    await expect(row.locator("th")).toHaveText("set_interval");
    // The device's answer arrives over the socket (the command table's change).
    await expect(row).toHaveAttribute("data-status", "succeeded");
    const commandId = (await row.getAttribute("data-command"))!;

    // A parameter list that is not JSON is refused before anything is sent.
    await commands.getByLabel("Command").fill("ping");
    await commands.getByLabel("Parameters (JSON)").fill("{seconds: 30");
    await commands.getByRole("button", { name: "Send command" }).click();
    await expect(commands.getByRole("alert")).toContainText("not JSON");
    await expect(commands.locator("tbody tr")).toHaveCount(1);

    const shadow = page.getByRole("region", { name: "Shadow" });
    await shadow.getByLabel(/Desired state to set/).fill('{"led": "on"}');
    await shadow.getByRole("button", { name: "Set desired" }).click();
    await expect(shadow.locator("pre.desired")).toContainText('"led": "on"');
    // The device applies the delta and reports it; shadow changes are read on asking.
    await expect
      .poll(async () => {
        await shadow.getByRole("button", { name: "Refresh shadow" }).click();
        return shadow.locator("pre.reported").textContent();
      }, { timeout: 30_000 })
      .toContain('"led": "on"');
    await expect(shadow.locator("pre.delta")).toContainText("none");
    const results = await new AxeBuilder({ page }).analyze();
    expect(results.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id)).toEqual([]);
    await page.screenshot({ path: info.outputPath("device-operator.png"), fullPage: true });

    // The stores' view, through the CLI.
    const stored = JSON.parse(hubAdmin(["shadow", id])) as { reported: Record<string, unknown> };
    expect(stored.reported.led).toBe("on");
    const listed = await page.evaluate(async ([device, command]) => {
      const token = sessionStorage.getItem("hub.tokens");
      const answer = await fetch(`/v1/devices/${encodeURIComponent(device)}/commands/${command}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return (await answer.json()) as { status: string; params: unknown };
    }, [id, commandId]);
    expect(listed).toMatchObject({ status: "succeeded", params: { seconds: 30 } });
  } finally {
    await fleet.stop();
  }
});

test("an admin sees a device's certificate, issues an ingest key that works, and revokes the certificate", async ({ page }, info) => {
  const id = unique("pw-cred");
  const files = info.outputPath(id);
  hubAdmin(["register", id, "--type", "environment-sensor", "--out", files]);
  const certificate = readFileSync(`${files}/certificate-id`, "utf8").trim();

  await signIn(page, person("admin"), `/devices/${id}`);
  const credentials = page.getByRole("region", { name: "Credentials" });
  const row = credentials.locator(`tr[data-certificate="${certificate}"]`);
  await expect(row).toHaveAttribute("data-state", "active");

  await credentials.getByRole("button", { name: "Issue an API key" }).click();
  const key = (await credentials.getByTestId("issued-api-key").textContent())!;
  expect(key.startsWith(`${id}.`)).toBe(true);
  // The key is good for HTTP ingest; an altered one is not (the positive control's twin).
  const ingest = async (apiKey: string) =>
    (
      await fetch(`${process.env.HUB_API_URL}/v1/telemetry`, {
        method: "POST",
        headers: { "x-api-key": apiKey, "content-type": "application/json" },
        body: JSON.stringify({ v: 2, seq: 1, msg_type: "telemetry", ts: new Date().toISOString(), metrics: { temperature: 21.5 }, status: "OK" }),
      })
    ).status;
  expect(await ingest(key)).toBe(202);
  expect(await ingest(`${key.slice(0, -2)}xx`)).toBe(401);

  page.once("dialog", (dialog) => void dialog.accept());
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row).toHaveAttribute("data-state", "revoked");
  await page.reload();
  await expect(page.getByRole("region", { name: "Credentials" }).locator(`tr[data-certificate="${certificate}"]`)).toHaveAttribute("data-state", "revoked");
  await page.screenshot({ path: info.outputPath("device-admin.png"), fullPage: true });
});

test("an operator adds an alert rule from the alerts page and deletes it", async ({ page }) => {
  const type = unique("pw-type");
  await signIn(page, person("operator"), "/alerts");
  const rules = page.getByRole("region", { name: "Alert rules" });
  await rules.getByLabel("Type or device").fill(type);
  await rules.getByLabel("Condition").fill("temperature > 75");
  await rules.getByLabel("Severity").selectOption("critical");
  await rules.getByRole("button", { name: "Add rule" }).click();
  const row = rules.locator("tbody tr", { hasText: `type ${type}` });
  await expect(row).toHaveCount(1);
  const stored = (JSON.parse(hubAdmin(["alerts", "rules"])) as { rules: { device_type?: string; severity: string }[] }).rules;
  expect(stored.filter((r) => r.device_type === type).map((r) => r.severity)).toEqual(["critical"]);

  // A condition the API cannot read is refused with its reason, and nothing is added.
  await rules.getByLabel("Type or device").fill(type);
  await rules.getByLabel("Condition").fill("temperature >> 75");
  await rules.getByRole("button", { name: "Add rule" }).click();
  await expect(rules.getByRole("alert")).toBeVisible();
  await expect(row).toHaveCount(1);

  await row.getByRole("button", { name: "Delete" }).click();
  await expect(row).toHaveCount(0);
  const left = (JSON.parse(hubAdmin(["alerts", "rules"])) as { rules: { device_type?: string }[] }).rules;
  expect(left.filter((r) => r.device_type === type)).toEqual([]);
});
