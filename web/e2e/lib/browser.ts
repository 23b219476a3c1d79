// Debian's Chromium (/usr/bin/chromium), headless, on a fresh profile in a temp directory:
// Playwright downloads no browser of its own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import { consoleURL } from './stack';

export const chromiumPath = process.env.TALLY_E2E_CHROMIUM || '/usr/bin/chromium';

export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface Console {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** Opens a browser on a fresh profile with the console as its base URL. */
export async function openConsole(opts: { viewport?: { width: number; height: number } } = {}): Promise<Console> {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: apt-get install chromium (.ci/run does)`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
    baseURL: consoleURL(),
    viewport: opts.viewport ?? { width: 1280, height: 860 },
    acceptDownloads: true,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
