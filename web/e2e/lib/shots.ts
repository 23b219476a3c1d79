import fs from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { screenshotsDir } from './paths';

/** Saves web/e2e/screenshots/<name>.png (name is "<nn>-<step>") of the whole page. */
export async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(screenshotsDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotsDir, `${name}.png`), fullPage: true, animations: 'disabled' });
}
