import { defineConfig } from '@playwright/test';
import { chromiumArgs, chromiumPath } from './lib/browser';

// One worker, files and tests in order: the specs walk the help page as one person would, on one
// stack (global-setup.ts starts bin/tally-dev, the way `make run` does).
export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  timeout: 60_000,
  globalTimeout: 10 * 60_000,
  expect: { timeout: 15_000 },
  outputDir: './test-results',
  reporter: [['list'], ['./lib/summary-reporter.ts']],
  use: {
    // Tests open their own persistent contexts (lib/browser.ts); these apply to any other.
    launchOptions: { executablePath: chromiumPath, args: chromiumArgs },
    actionTimeout: 15_000,
    navigationTimeout: 20_000,
    trace: 'retain-on-failure',
  },
});
