// The console at 390 px wide (a phone): the header and the Add Credits modal fit, nothing
// scrolls sideways.
import { expect, test, type Page } from '@playwright/test';
import { expectAccessible } from '../lib/axe';
import { openConsole, type Console } from '../lib/browser';
import { shot } from '../lib/shots';
import { signIn } from '../lib/signin';

let c: Console | undefined;

test.afterEach(async ({}, testInfo) => {
  if (c && testInfo.status !== testInfo.expectedStatus) {
    await c.page.screenshot({ path: testInfo.outputPath('failure.png'), fullPage: true }).catch(() => undefined);
  }
  await c?.close();
  c = undefined;
});

async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

async function withinViewport(page: Page, what: string, box: { x: number; width: number } | null): Promise<void> {
  expect(box, `${what} is laid out`).not.toBeNull();
  expect(box!.x, `${what} starts inside the screen`).toBeGreaterThanOrEqual(0);
  expect(box!.x + box!.width, `${what} ends inside the screen`).toBeLessThanOrEqual(page.viewportSize()!.width + 0.5);
}

test('20 at 390 px wide the header and the Add Credits modal fit, with no horizontal scroll', async () => {
  c = await openConsole({ viewport: { width: 390, height: 844 } });
  const page = c.page;
  await signIn(page, 'Ada Lovelace');
  const header = page.getByRole('banner');
  const balance = header.getByRole('button', { name: /^Balance / });
  await expect(balance).toBeVisible();
  await withinViewport(page, 'the header', await header.boundingBox());
  await withinViewport(page, 'the balance', await balance.boundingBox());
  await withinViewport(page, 'the profile icon', await header.getByRole('button', { name: /^Profile/ }).boundingBox());
  expect(await horizontalOverflow(page), 'no horizontal scroll on Billing').toBeLessThanOrEqual(0);
  await shot(page, '20-mobile-billing');

  await balance.click();
  await page.getByRole('menuitem', { name: 'Add Credits' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add Credits' });
  await expect(dialog.getByRole('button', { name: 'Go to Checkout' })).toBeVisible();
  await withinViewport(page, 'the Add Credits modal', await dialog.boundingBox());
  await withinViewport(page, 'Go to Checkout', await dialog.getByRole('button', { name: 'Go to Checkout' }).boundingBox());
  await withinViewport(page, 'the amount field', await dialog.getByLabel(/Amount/).boundingBox());
  expect(await horizontalOverflow(page), 'no horizontal scroll with the modal open').toBeLessThanOrEqual(0);
  await expectAccessible(page, 'the Add Credits modal at 390 px', '[role=dialog]');
  await shot(page, '20-mobile-add-credits');
});
