// Fails early, with the reason, when the stack or the tools are not there.
import { existsSync } from "node:fs";

export default async function globalSetup(): Promise<void> {
  for (const name of ["HUB_CONSOLE_URL", "HUB_USER_POOL_ID", "HUB_STACK_DIR", "AWS_ENDPOINT_URL"]) {
    if (!process.env[name]) throw new Error(`${name} is not set: source the stack's stack.env`);
  }
  const chromium = process.env.HUB_CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(chromium)) throw new Error(`no browser at ${chromium} (localstack/install.sh installs it)`);
  const config = await fetch(new URL("config.json", process.env.HUB_CONSOLE_URL));
  if (!config.ok) throw new Error(`the console is not served: config.json ${config.status}`);
}
