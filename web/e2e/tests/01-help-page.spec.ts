// The product's help page ("Credits and Billing"), walked step by step by one member, Ada
// Lovelace of acme, in one browser: each test is a step of the page, in the page's order, and
// saves a screenshot. Every page the member sees is checked with axe-core.
import fs from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { balance, debitUsage, nanos, restOK, startRental, type Money } from '../lib/api';
import { expectAccessible } from '../lib/axe';
import { openConsole, type Console } from '../lib/browser';
import { addMonthsUTC, day, decimal, usd } from '../lib/format';
import { links, message, messagesTo } from '../lib/mailpit';
import { shot } from '../lib/shots';
import { consoleURL, stack } from '../lib/stack';
import { people } from '../lib/tokens';

test.describe.configure({ mode: 'serial' });

const ada = people.ada;
const ops = people.ops;

let c: Console;
let page: Page;

/** What the journey learned so far, for the later steps. */
const seen: {
  balanceBefore?: bigint;
  firstPayment?: { id: string; invoiceNumber: string; amount: bigint };
  expiryAfterCard?: Date;
  threshold?: bigint;
} = {};

test.beforeAll(async () => {
  c = await openConsole();
  page = c.page;
});

test.afterAll(async () => {
  await c?.close();
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && page) {
    await page.screenshot({ path: testInfo.outputPath('failure.png'), fullPage: true }).catch(() => undefined);
  }
});

/** The balance button in the header. */
const balanceButton = (p: Page) => p.getByRole('banner').getByRole('button', { name: /^Balance / });

const UNIT = 1_000_000_000n;

test('01 sign in: the development sign-in page signs Ada Lovelace in with one click', async () => {
  await page.goto('/billing');
  // Not signed in: the console sends the browser to the sign-in page, which lists the people.
  await expect(page.getByRole('heading', { level: 1, name: /sign in/i })).toBeVisible();
  for (const name of ['Ada Lovelace', 'Grace Hopper', 'Ops']) {
    await expect(page.getByRole('button', { name: new RegExp(name) })).toBeVisible();
  }
  await expectAccessible(page, 'the sign-in page');
  await shot(page, '01-sign-in');
  await page.getByRole('button', { name: /Ada Lovelace/ }).click();
  // Back where she was going, signed in: the header names her and her organization.
  await expect(page).toHaveURL(/\/billing$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Billing' })).toBeVisible();
  const header = page.getByRole('banner');
  await expect(header).toContainText('Ada Lovelace');
  await expect(header).toContainText('acme');
  // The session is an HttpOnly cookie: JavaScript cannot read it.
  const cookie = (await c.context.cookies()).find((k) => k.name === 'tally_session');
  expect(cookie, 'the tally_session cookie').toBeDefined();
  expect(cookie!.httpOnly).toBe(true);
  expect(cookie!.sameSite).toBe('Lax');
  expect(await page.evaluate(() => document.cookie)).not.toContain('tally_session');
});

test('02 the credit balance is displayed in the top right corner of the screen', async () => {
  const b = await balance(ada);
  seen.balanceBefore = nanos(b.balance);
  const button = balanceButton(page);
  await expect(button).toBeVisible();
  await expect(button).toContainText(usd(seen.balanceBefore));
  const box = await button.boundingBox();
  const viewport = page.viewportSize()!;
  expect(box, 'the balance has a box').not.toBeNull();
  expect(box!.x + box!.width, 'right edge of the balance').toBeGreaterThan(viewport.width * 0.7);
  expect(box!.y, 'top of the balance').toBeLessThan(120);
  await expectAccessible(page, 'the Billing page');
  await shot(page, '02-balance');
});

test('03 clicking the balance opens a menu with Add Credits, Billing and Pricing', async () => {
  await balanceButton(page).click();
  const menu = page.getByRole('menu');
  await expect(menu).toBeVisible();
  await expect(menu.getByRole('menuitem')).toHaveText(['Add Credits', 'Billing', 'Pricing']);
  await expectAccessible(page, 'the balance menu', '[role=menu]');
  await shot(page, '03-balance-menu');
});

test('04 Add Credits opens a modal asking for the value, with the 3-month validity note', async () => {
  await page.getByRole('menu').getByRole('menuitem', { name: 'Add Credits' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add Credits' });
  await expect(dialog).toBeVisible();
  await expect(dialog).toContainText('validity of 3 months');
  await expect(dialog).toContainText('renews the validity of the total credits');
  // The limits come from the server (GetCheckoutOptions), as do the presets.
  const opts = await restOK<{ minAmount: Money; maxAmount: Money; presets: Money[]; validityMonths: number }>(
    ada, 'GET', '/v1/orgs/acme/checkout-options');
  await expect(dialog).toContainText(`From ${usd(nanos(opts.minAmount))} to ${usd(nanos(opts.maxAmount))}`);
  for (const p of opts.presets ?? []) {
    await expect(dialog.getByRole('group', { name: /preset/i }).getByRole('button', { name: usd(nanos(p)) })).toBeVisible();
  }
  // Below the minimum is refused in the modal, before any checkout.
  const amount = dialog.getByLabel(/Amount/);
  const below = nanos(opts.minAmount) - UNIT;
  await amount.fill((below / UNIT).toString());
  await dialog.getByRole('button', { name: 'Go to Checkout' }).click();
  await expect(dialog.getByRole('alert')).toContainText(`The minimum is ${usd(nanos(opts.minAmount))}`);
  await expect(page).toHaveURL(/\/billing/);

  await amount.fill('25');
  await expect(dialog.getByRole('alert')).toHaveCount(0);
  await expect(dialog).toContainText(`New expiry date: ${day(addMonthsUTC(new Date(), opts.validityMonths || 3))}`);
  await expectAccessible(page, 'the Add Credits modal', '[role=dialog]');
  await shot(page, '04-add-credits');
});

test('05 Go to Checkout redirects to the checkout page, which offers Credit Card and Google Pay', async () => {
  await page.getByRole('dialog', { name: 'Add Credits' }).getByRole('button', { name: 'Go to Checkout' }).click();
  const checkout = stack().checkoutUrl!;
  await expect(page).toHaveURL((u) => u.href.startsWith(`${checkout}/checkout/test/`));
  await expect(page.getByText('TEST MODE')).toBeVisible();
  // The page states what is paid and by whom, the amount written as the console writes it.
  await expect(page.getByRole('main')).toContainText('$25.00');
  await expect(page.getByText('Ada Lovelace')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Credit Card' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Google Pay' })).toBeVisible();
  await expectAccessible(page, 'the test-mode checkout page');
  await shot(page, '05-checkout');
});

test('06 paying with Credit Card returns to the Billing page', async () => {
  await page.getByRole('button', { name: 'Credit Card' }).click();
  await expect(page).toHaveURL((u) => u.href.startsWith(`${consoleURL()}/billing?checkout=success`));
  await expect(page.getByRole('heading', { level: 1, name: 'Billing' })).toBeVisible();
  // The banner follows the payment until the webhook has credited it.
  await expect(page.getByRole('status').filter({ hasText: 'Payment received' })).toContainText('$25.00');
  await expectAccessible(page, 'the Billing page after checkout');
  await shot(page, '06-paid');
});

test('07 Billing lists the payment with its date, amount, status and the member who paid', async () => {
  const list = await restOK<{ payments: { id: string; invoiceNumber: string; amount: Money; status: string; paidAt: string }[] }>(
    ada, 'GET', '/v1/orgs/acme/payments');
  const paid = list.payments.find((p) => p.status === 'PAYMENT_STATUS_SUCCEEDED' && nanos(p.amount) === 25n * UNIT);
  expect(paid, 'the $25 payment, through the API').toBeDefined();
  expect(paid!.invoiceNumber).not.toBe('');
  seen.firstPayment = { id: paid!.id, invoiceNumber: paid!.invoiceNumber, amount: nanos(paid!.amount) };

  const table = page.getByRole('region', { name: 'Payments' }).getByRole('table');
  await expect(table.getByRole('columnheader')).toContainText(['Date', 'Amount', 'Status', 'Paid by', 'Invoice']);
  const row = table.getByRole('row').filter({ hasText: paid!.invoiceNumber });
  await expect(row).toHaveCount(1);
  await expect(row).toContainText('$25.00');
  await expect(row).toContainText('Paid');
  await expect(row).toContainText('Ada Lovelace');
  await expect(row).toContainText(day(paid!.paidAt));
  await shot(page, '07-billing');
});

test('08 Download invoice gives the PDF of the payment', async () => {
  const { invoiceNumber } = seen.firstPayment!;
  const row = page.getByRole('region', { name: 'Payments' }).getByRole('row').filter({ hasText: invoiceNumber });
  const link = row.getByRole('link', { name: 'Download invoice' });
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  expect(download.suggestedFilename()).toBe(`${invoiceNumber}.pdf`);
  const file = await download.path();
  const bytes = fs.readFileSync(file);
  expect(bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  expect(bytes.length).toBeGreaterThan(500);

  // The same link, fetched with the browser's session: a real attachment with the invoice's name.
  const href = await link.getAttribute('href');
  const res = await c.context.request.get(href!);
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toContain('application/pdf');
  expect(res.headers()['content-disposition']).toBe(`attachment; filename="${invoiceNumber}.pdf"`);
  expect((await res.body()).subarray(0, 5).toString('latin1')).toBe('%PDF-');
  await shot(page, '08-invoice');
});

test('09 the balance rose by the payment and its validity was renewed for 3 months', async () => {
  const b = await balance(ada);
  expect(nanos(b.balance)).toBe(seen.balanceBefore! + seen.firstPayment!.amount);
  expect(b.expiresAt, 'the balance has an expiry').toBeTruthy();
  const expiry = new Date(b.expiresAt!);
  const expected = addMonthsUTC(new Date(), 3);
  expect(Math.abs(expiry.getTime() - expected.getTime()), 'expires 3 months after the payment').toBeLessThan(36 * 3600_000);
  seen.expiryAfterCard = expiry;
  await page.reload();
  const button = balanceButton(page);
  await expect(button).toContainText(usd(nanos(b.balance)));
  await expect(button).toContainText(`expires ${day(expiry)}`);
  await shot(page, '09-balance-rose');
});

test('10 another recharge, with Google Pay, adds to the balance and renews the validity of all of it', async () => {
  await balanceButton(page).click();
  await page.getByRole('menuitem', { name: 'Add Credits' }).click();
  const dialog = page.getByRole('dialog', { name: 'Add Credits' });
  await dialog.getByLabel(/Amount/).fill('10');
  await dialog.getByRole('button', { name: 'Go to Checkout' }).click();
  await expect(page).toHaveURL((u) => u.href.startsWith(`${stack().checkoutUrl}/checkout/test/`));
  await expect(page.getByRole('main')).toContainText(/10\.00/);
  await page.getByRole('button', { name: 'Google Pay' }).click();
  await expect(page).toHaveURL(/\/billing\?checkout=success/);
  await expect(page.getByRole('status').filter({ hasText: 'Payment received' })).toContainText('$10.00');
  const before = seen.balanceBefore! + seen.firstPayment!.amount;
  await expect(balanceButton(page)).toContainText(usd(before + 10n * UNIT));
  const b = await balance(ada);
  expect(nanos(b.balance)).toBe(before + 10n * UNIT);
  expect(new Date(b.expiresAt!).getTime(), 'the later recharge moved the expiry of the whole balance').toBeGreaterThan(seen.expiryAfterCard!.getTime());
  await expect(page.getByRole('region', { name: 'Payments' }).getByRole('row').filter({ hasText: '$10.00' })).toContainText('Ada Lovelace');
  await shot(page, '10-google-pay');
});

test('11 Settings, from the profile icon: Notifications, Low Credit Alert enabled with a credit limit', async () => {
  await page.getByRole('banner').getByRole('button', { name: /^Profile/ }).click();
  await page.getByRole('menuitem', { name: 'Settings' }).click();
  await expect(page).toHaveURL(/\/settings\/notifications$/);
  await expect(page.getByRole('heading', { level: 2, name: 'Notifications' })).toBeVisible();
  const alert = page.getByRole('switch', { name: 'Low Credit Alert' });
  await expect(alert).not.toBeChecked();
  await alert.click();
  await expect(alert).toBeChecked();
  // A limit just under the balance: the next spend takes the balance below it.
  const b = nanos((await balance(ada)).balance);
  seen.threshold = b - 5n * UNIT;
  await page.getByLabel(/Set the credit limit/).fill((seen.threshold / UNIT).toString());
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Notification settings saved' })).toBeVisible();
  await expectAccessible(page, 'Settings → Notifications');
  await shot(page, '11-low-credit-alert');
});

test('12 the Low Credit Alert and its limit are still there after a reload', async () => {
  await page.reload();
  await expect(page.getByRole('switch', { name: 'Low Credit Alert' })).toBeChecked();
  await expect(page.getByLabel(/Set the credit limit/)).toHaveValue(new RegExp(`^${seen.threshold! / UNIT}(\\.0+)?$`));
  const s = await restOK<{ settings: { lowCreditAlertEnabled: boolean; lowCreditThreshold: Money } }>(
    ada, 'GET', '/v1/orgs/acme/members/user-ada/notification-settings');
  expect(s.settings.lowCreditAlertEnabled).toBe(true);
  expect(nanos(s.settings.lowCreditThreshold)).toBe(seen.threshold);
  await shot(page, '12-after-reload');
});

interface Settings {
  settings: { lastKnownBalance?: Money; lowCreditAlertState: string };
}
interface Deliveries {
  deliveries: { kind: string; memberId: string; to: string; status: string }[];
}

/** Waits until the notifications service has seen the organization's balance at want. */
async function notificationsSaw(want: bigint): Promise<void> {
  await expect
    .poll(async () => nanos((await restOK<Settings>(ada, 'GET', '/v1/orgs/acme/members/user-ada/notification-settings')).settings.lastKnownBalance),
      { timeout: 30_000, message: 'the notifications service sees the new balance' })
    .toBe(want);
}

async function lowCreditDeliveries(): Promise<Deliveries['deliveries']> {
  const d = await restOK<Deliveries>(ops, 'GET', '/v1/notifications/deliveries?orgId=acme&memberId=user-ada&pageSize=500');
  return d.deliveries.filter((x) => x.kind === 'EMAIL_KIND_LOW_CREDIT');
}

const lowSubject = /^Low credit balance/;

test('13 spending below the limit: the header follows, one email is sent, and its link opens the Billing page', async () => {
  expect(await messagesTo(ada.email, lowSubject), 'no alert before the spend').toHaveLength(0);
  // The model backend records usage: 8M input + 2M output tokens of Llama 3.1 70B.
  await debitUsage('acme', 'llama-3.1-70b-instruct', { input_tokens: '8000000', output_tokens: '2000000' }, `e2e-llama-${Date.now()}`);
  const after = nanos((await balance(ada)).balance);
  expect(after).toBeLessThan(seen.threshold!);
  // The header follows the spend by itself (no reload), with the low-balance badge.
  await expect(balanceButton(page)).toContainText(usd(after), { timeout: 20_000 });
  await expect(balanceButton(page)).toContainText('Low balance');
  await expect.poll(async () => (await messagesTo(ada.email, lowSubject)).length, { timeout: 30_000, message: 'the low-credit email arrives' }).toBe(1);

  // Spending more while below the limit sends nothing more: the alert fired once for this stay.
  await debitUsage('acme', 'whisper-large-v3', { audio_seconds: '600' }, `e2e-whisper-${Date.now()}`);
  const later = nanos((await balance(ada)).balance);
  expect(later).toBeLessThan(after);
  await notificationsSaw(later);
  expect(await lowCreditDeliveries(), 'one low-credit delivery').toHaveLength(1);
  const emails = await messagesTo(ada.email, lowSubject);
  expect(emails).toHaveLength(1);

  const email = await message(emails[0]!.ID);
  expect(email.Subject).toContain('acme');
  const billing = links(email).find((l) => new URL(l).pathname === '/billing');
  expect(billing, `a link to the Billing page among ${links(email).join(', ')}`).toBeDefined();
  expect(new URL(billing!).origin, 'the link points at the console').toBe(new URL(consoleURL()).origin);
  await page.goto(billing!);
  await expect(page.getByRole('heading', { level: 1, name: 'Billing' })).toBeVisible();
  // Under the limit, the header says so.
  await expect(balanceButton(page)).toContainText(usd(later));
  await expect(balanceButton(page)).toContainText('Low balance');
  await shot(page, '13-low-credit-email-link');
});

test('14 Pricing lists the models with their prices', async () => {
  await balanceButton(page).click();
  await page.getByRole('menuitem', { name: 'Pricing' }).click();
  await expect(page).toHaveURL(/\/pricing$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Pricing' })).toBeVisible();
  const models = await restOK<{ models: { modelId: string; displayName: string }[] }>(ada, 'GET', '/v1/pricing/models');
  expect(models.models.length).toBeGreaterThan(0);
  const table = page.getByRole('region', { name: /models/i }).getByRole('table');
  for (const m of models.models) {
    await expect(table.getByRole('row').filter({ hasText: m.displayName || m.modelId }).first()).toBeVisible();
  }
  await expect(table.getByRole('row').filter({ hasText: 'Llama 3.1 70B Instruct' }).first()).toContainText('$0.59');
  await expectAccessible(page, 'the Pricing page');
  await shot(page, '14-pricing');
});

test('15 Usage draws the spend per day by model, as a chart and a table', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Usage' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Usage' })).toBeVisible();
  const summary = await restOK<{ totals: { kind: string; id: string; amount: Money }[] }>(ada, 'GET', '/v1/orgs/acme/usage-summary?days=30');
  const llama = summary.totals.find((t) => t.kind === 'model' && t.id === 'llama-3.1-70b-instruct');
  expect(llama, 'the usage summary has the spend').toBeDefined();
  const section = page.getByRole('region', { name: /Credits consumed/ });
  await expect(section.locator('svg.recharts-surface').first()).toBeVisible();
  const table = page.getByRole('region', { name: 'Usage per day' }).getByRole('table');
  await expect(table.getByRole('columnheader', { name: 'llama-3.1-70b-instruct' })).toBeVisible();
  await expect(table.getByRole('columnheader', { name: 'whisper-large-v3' })).toBeVisible();
  // Today's row carries the spend of the model.
  const today = new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(new Date());
  await expect(table.getByRole('row', { name: new RegExp(`^${today}\\b`) })).toContainText(usd(nanos(llama!.amount)));
  // Export CSV downloads the same numbers: one line per day and model.
  const [csv] = await Promise.all([page.waitForEvent('download'), section.getByRole('button', { name: 'Export CSV' }).click()]);
  expect(csv.suggestedFilename()).toMatch(/\.csv$/);
  const lines = fs.readFileSync(await csv.path(), 'utf8').trim().split(/\r?\n/);
  expect(lines[0]).toBe('day,kind,id,amount,currency,count');
  const llamaLine = lines.find((l) => l.includes(',model,llama-3.1-70b-instruct,'));
  const amount = decimal(nanos(llama!.amount)).replace('.', '\\.');
  expect(llamaLine, lines.join('\n')).toMatch(new RegExp(`^\\d{4}-\\d{2}-\\d{2},model,llama-3\\.1-70b-instruct,${amount}0*,USD,1$`));
  // The transaction history lists the credits and the debits.
  const history = page.getByRole('region', { name: 'Transaction history' });
  await expect(history.getByRole('row').filter({ hasText: 'Debit' }).first()).toBeVisible();
  await expect(history.getByRole('row').filter({ hasText: 'Credit' }).first()).toBeVisible();
  await expectAccessible(page, 'the Usage page');
  await shot(page, '15-usage');
});

test('16 Instances: the instance types at the price of the moment, then the rental with its locked hourly price', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Instances' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Instances' })).toBeVisible();
  const prices = await restOK<{ instances: { instanceTypeId: string; hourlyPrice: Money; available: boolean }[] }>(ada, 'GET', '/v1/pricing/instances');
  expect(prices.instances.length).toBeGreaterThan(0);
  const types = page.getByRole('group', { name: 'Instance types table' }).getByRole('table');
  // One row per type, named by its id (the row header starts with it).
  await expect(types.getByRole('rowheader')).toHaveCount(prices.instances.length);
  for (const it of prices.instances) {
    const row = types.getByRole('row').filter({ has: page.getByRole('rowheader', { name: new RegExp(`^${it.instanceTypeId.replaceAll('.', '\\.')}(\\s|$)`) }) });
    await expect(row).toContainText(usd(nanos(it.hourlyPrice)));
    await expect(row).toContainText(it.available ? 'Available' : 'Not available');
  }
  await expect(page.getByRole('region', { name: 'Your rentals' })).toContainText('has not rented an instance yet');

  // The instance controller starts metering a rental of the cheapest available type.
  const cheapest = prices.instances.filter((i) => i.available).sort((a, b) => (nanos(a.hourlyPrice) < nanos(b.hourlyPrice) ? -1 : 1))[0]!;
  const instanceId = `e2e-${Date.now()}`;
  const started = await startRental('acme', instanceId, cheapest.instanceTypeId);
  await page.reload();
  const row = page.getByRole('group', { name: 'Rentals table' }).getByRole('row').filter({ hasText: instanceId });
  await expect(row).toContainText(cheapest.instanceTypeId);
  await expect(row).toContainText(usd(nanos(started.rental.hourlyPrice)));
  await expect(row).toContainText('Running');
  await expect(row).toContainText(usd(nanos(started.rental.totalCharged)));
  await expectAccessible(page, 'the Instances page');
  await shot(page, '16-instances');
});
