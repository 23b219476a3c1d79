// Auto-recharge on the Billing page: an administrator saves a card on the test-mode setup page,
// sets a rule, usage crosses the threshold and the recharge appears among the payments, marked
// Automatic, with its invoice. The rule is turned off again at the end so the other journeys see
// acme's balance move only by their own steps.
import { expect, test } from '@playwright/test';
import { balance, debitUsage, nanos, restOK } from '../lib/api';
import { expectAccessible } from '../lib/axe';
import { openConsole, type Console } from '../lib/browser';
import { shot } from '../lib/shots';
import { signIn } from '../lib/signin';
import { poll, stack } from '../lib/stack';
import { people } from '../lib/tokens';

let c: Console | undefined;

test.afterEach(async ({}, testInfo) => {
  if (c && testInfo.status !== testInfo.expectedStatus) {
    await c.page.screenshot({ path: testInfo.outputPath('failure.png'), fullPage: true }).catch(() => undefined);
  }
  await c?.close();
  c = undefined;
  await restOK(people.grace, 'PUT', '/v1/orgs/acme/auto-recharge', { enabled: false });
});

interface Payment {
  id: string;
  automatic?: boolean;
  status: string;
  invoiceNumber?: string;
}

test('23 an administrator saves a card and sets auto-recharge; usage below the threshold recharges once, marked Automatic', async () => {
  c = await openConsole();
  const page = c.page;
  await signIn(page, 'Grace Hopper');
  const section = page.getByRole('region', { name: 'Auto-recharge' });
  await section.getByRole('button', { name: /Add card|Replace card/ }).click();

  // The test-mode setup page offers test cards, as Stripe's test mode does.
  await expect(page).toHaveURL((u) => u.href.startsWith(`${stack().checkoutUrl}/checkout/test/setup/`));
  await expect(page.getByText('TEST MODE')).toBeVisible();
  await expectAccessible(page, 'the test-mode setup page');
  await page.getByRole('radio', { name: /4242 \(succeeds\)/ }).check();
  await page.getByRole('button', { name: 'Save card' }).click();

  await expect(page).toHaveURL(/\/billing\?setup=success/);
  await expect(page.getByRole('status').filter({ hasText: 'Card saved.' })).toBeVisible({ timeout: 30_000 });
  await expect(section.getByText(/Visa ending in 4242, expires 12\/\d{4}/)).toBeVisible();

  // Threshold just above what acme has: the next usage crosses it.
  const before = await balance(people.ada);
  const units = Number(nanos(before.available) / 1_000_000_000n) + 5;
  await section.getByRole('checkbox', { name: 'Enable auto-recharge' }).check();
  await section.getByLabel('When available credits fall below (USD)').fill(String(units));
  await section.getByRole('radio', { name: 'A fixed amount' }).check();
  await section.getByLabel('Recharge amount (USD)').fill('10');
  await section.getByLabel('Monthly cap (USD)').fill('100');
  await section.getByRole('button', { name: 'Save auto-recharge' }).click();
  await expect(section.getByRole('status')).toContainText('Auto-recharge saved.');
  await expectAccessible(page, 'the auto-recharge section');
  await shot(page, '23-auto-recharge');

  const known = new Set((await restOK<{ payments: Payment[] }>(people.ada, 'GET', '/v1/orgs/acme/payments')).payments.map((p) => p.id));
  await debitUsage('acme', 'whisper-large-v3', { audio_seconds: '60' }, `e2e-recharge-${Date.now()}`);
  const recharge = await poll('the automatic recharge is invoiced', 30_000, async () => {
    const list = await restOK<{ payments: Payment[] }>(people.ada, 'GET', '/v1/orgs/acme/payments');
    return list.payments.find((p) => p.automatic && !known.has(p.id) && p.invoiceNumber);
  });
  expect(recharge.status).toBe('PAYMENT_STATUS_SUCCEEDED');

  await page.reload();
  const row = page.getByRole('row').filter({ hasText: recharge.invoiceNumber ?? '' });
  await expect(row.getByText('Automatic')).toBeVisible();
  await expect(row.getByRole('link', { name: 'Download invoice' })).toBeVisible();
  const list = await restOK<{ payments: Payment[] }>(people.ada, 'GET', '/v1/orgs/acme/payments');
  expect(list.payments.filter((p) => p.automatic && !known.has(p.id)), 'one recharge for one crossing').toHaveLength(1);
  await shot(page, '23-automatic-payment');
});
