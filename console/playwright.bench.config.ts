// The console's benchmarks (`npm run bench`): figures printed, nothing timed asserted.
// Same browser and stack as the tests; not part of the test command.
import { defineConfig } from "@playwright/test";
import base from "./playwright.config";

export default defineConfig({
  ...base,
  testDir: "bench",
  outputDir: "test-results/bench",
  timeout: 600_000,
});
