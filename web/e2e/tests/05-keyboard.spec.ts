// The help page's path by keyboard alone: Tab to the balance, open its menu, Add Credits, type
// the amount, and Escape back out, focus returning where it was.
import { expect, test } from '@playwright/test';
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

test('22 keyboard only: the balance menu, Add Credits and back', async () => {
  c = await openConsole();
  const page = c.page;
  await signIn(page, 'Ada Lovelace');
  const balance = page.getByRole('banner').getByRole('button', { name: /^Balance / });
  // Tab from the top of the page until the balance has the focus (a bounded number of stops).
  await page.locator('body').focus();
  let reached = false;
  for (let i = 0; i < 15 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await balance.evaluate((el) => el === document.activeElement);
  }
  expect(reached, 'the balance is reachable with Tab').toBe(true);
  await page.keyboard.press('Enter');
  const menu = page.getByRole('menu');
  await expect(menu).toBeVisible();
  await expect(menu.getByRole('menuitem', { name: 'Add Credits' })).toBeFocused();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Add Credits' });
  await expect(dialog).toBeVisible();
  // Focus moves into the modal; the amount field takes what is typed.
  await expect(dialog.locator(':focus')).toHaveCount(1);
  await dialog.getByLabel(/Amount/).focus();
  await page.keyboard.type('42');
  await expect(dialog.getByLabel(/Amount/)).toHaveValue('42');
  await shot(page, '22-keyboard-add-credits');
  await page.keyboard.press('Escape');
  await expect(dialog).toBeHidden();
  await expect(balance).toBeFocused();
});
