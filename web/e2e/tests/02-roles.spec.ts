// The other people of the help page's world: a member of another organization is refused, an
// administrator edits the billing profile printed on invoices, ops resolves a review item.
import { expect, test } from '@playwright/test';
import { nanos, rest, restOK, type Money } from '../lib/api';
import { expectAccessible } from '../lib/axe';
import { openConsole, type Console } from '../lib/browser';
import { shot } from '../lib/shots';
import { signIn } from '../lib/signin';
import { poll, stack } from '../lib/stack';
import { people } from '../lib/tokens';
import { deliverCheckoutCompleted } from '../lib/webhook';

let c: Console | undefined;

test.afterEach(async ({}, testInfo) => {
  if (c && testInfo.status !== testInfo.expectedStatus) {
    await c.page.screenshot({ path: testInfo.outputPath('failure.png'), fullPage: true }).catch(() => undefined);
  }
  await c?.close();
  c = undefined;
});

interface Checkout {
  url: string;
  sessionId: string;
  paymentId: string;
}

interface Payment {
  id: string;
  status: string;
  invoiceNumber: string;
  underReview: boolean;
  amount: Money;
}

test('17 a member of another organization is refused acme\'s data, and acme\'s member globex\'s invoice', async () => {
  // Wile of globex pays a top-up of his own organization on the test-mode checkout.
  const wile = people.wile;
  const cs = await restOK<Checkout>(wile, 'POST', '/v1/orgs/globex/checkout-sessions', { amount: { currencyCode: 'USD', units: '7', nanos: 0 } });
  const pay = await fetch(`${cs.url}/pay`, { method: 'POST', body: new URLSearchParams({ method: 'card' }), redirect: 'manual' });
  expect(pay.status, 'the test-mode page takes the payment').toBe(303);
  const paid = await poll('the globex payment is invoiced', 30_000, async () => {
    const p = await restOK<{ payment: Payment }>(wile, 'GET', `/v1/orgs/globex/payments/${cs.paymentId}`);
    return p.payment.invoiceNumber ? p.payment : undefined;
  });

  // With his own token, acme's payments and balance are refused.
  for (const route of ['/v1/orgs/acme/payments', '/v1/orgs/acme/balance', `/v1/orgs/acme/payments/${paid.id}/invoice`]) {
    const res = await rest(wile, 'GET', route);
    expect(res.status, route).toBe(403);
  }

  // Ada of acme, signed in to the console, follows a link to globex's invoice: refused, no PDF.
  c = await openConsole();
  const page = c.page;
  await signIn(page, 'Ada Lovelace');
  const invoice = `/v1/orgs/globex/payments/${paid.id}/invoice`;
  const res = await page.goto(invoice);
  expect(res?.status()).toBe(403);
  expect(res?.headers()['content-type']).toContain('application/json');
  await expect(page.locator('body')).toContainText(/not yours|permission|forbidden/i);
  await shot(page, '17-other-org-refused');

  // And a member's console refuses the ops tools with a visible forbidden state.
  await page.goto('/ops');
  await expect(page.getByRole('heading', { level: 1, name: 'Ops' })).toBeVisible();
  await expect(page.getByRole('alert')).toContainText("You don't have access to this page.");
  await expectAccessible(page, 'the forbidden state');
  await shot(page, '17-member-forbidden');
});

interface Profile {
  profile: { legalName: string; address: string; taxId: string; email: string };
}

test('18 an administrator edits the billing profile printed on invoices', async () => {
  c = await openConsole();
  const page = c.page;
  await signIn(page, 'Grace Hopper');
  const section = page.getByRole('region', { name: 'Billing profile' });
  await expect(section.getByRole('button', { name: 'Save billing profile' })).toBeVisible();
  const legal = `Acme Corporation ${Date.now()}`;
  await section.getByLabel('Legal name').fill(legal);
  await section.getByLabel('Address').fill('1 Analytical Engine Way\nLondon');
  await section.getByLabel('Tax ID').fill('GB123456789');
  await section.getByLabel('Billing email').fill('billing@acme.test');
  await section.getByRole('button', { name: 'Save billing profile' }).click();
  await expect(section.getByRole('status')).toContainText('Billing profile saved.');
  await expectAccessible(page, 'the billing profile form');
  await shot(page, '18-billing-profile');

  await page.reload();
  await expect(page.getByRole('region', { name: 'Billing profile' }).getByLabel('Legal name')).toHaveValue(legal);
  const saved = await restOK<Profile>(people.ada, 'GET', '/v1/orgs/acme/billing-profile');
  expect(saved.profile).toMatchObject({ legalName: legal, taxId: 'GB123456789', email: 'billing@acme.test' });
  // A member may read it, not change it.
  const body = { legalName: legal, address: '1 Analytical Engine Way\nLondon', taxId: 'GB123456789', email: 'billing@acme.test' };
  const put = await rest(people.ada, 'PUT', '/v1/orgs/acme/billing-profile', { ...body, legalName: 'Not Acme' });
  expect(put.status, JSON.stringify(put.body)).toBe(403);
  // Grace's PUT of the same shape is accepted: the refusal is the role, not the request.
  const own = await rest(people.grace, 'PUT', '/v1/orgs/acme/billing-profile', body);
  expect(own.status, JSON.stringify(own.body)).toBe(200);
});

interface ReviewItems {
  items: { id: string; paymentId: string; kind: string; resolvedAt?: string; resolvedBy?: string; resolution?: string }[];
}

test('19 ops resolves a review item raised by a webhook whose amount does not match the checkout', async () => {
  // A checkout of $15 whose completion reports $1.00 paid: payments credits nothing and opens a
  // review item (the real path a tampered or mis-set session takes).
  const cs = await restOK<Checkout>(people.ada, 'POST', '/v1/orgs/acme/checkout-sessions', { amount: { currencyCode: 'USD', units: '15', nanos: 0 } });
  const before = nanos((await restOK<{ balance: Money }>(people.ada, 'GET', '/v1/orgs/acme/balance')).balance);
  const delivered = await deliverCheckoutCompleted({
    sessionId: cs.sessionId, paymentId: cs.paymentId, orgId: 'acme', memberId: people.ada.sub, amountTotal: 100, currency: 'USD',
  });
  expect(delivered.status, delivered.body).toBe(200);
  const items = await restOK<ReviewItems>(people.ops, 'GET', '/v1/payment-review-items');
  const item = items.items.find((i) => i.paymentId === cs.paymentId);
  expect(item, 'a review item for the payment').toBeDefined();
  expect(item!.kind).toBe('amount_mismatch');
  expect(nanos((await restOK<{ balance: Money }>(people.ada, 'GET', '/v1/orgs/acme/balance')).balance), 'nothing credited').toBe(before);

  c = await openConsole();
  const page = c.page;
  await signIn(page, 'Ops', '/ops');
  await expect(page.getByRole('heading', { level: 1, name: 'Ops' })).toBeVisible();
  const card = page.getByRole('listitem').filter({ hasText: `payment ${cs.paymentId}` });
  await expect(card).toContainText('amount_mismatch');
  await expectAccessible(page, 'the Ops review items');
  await shot(page, '19-ops-review-item');
  await card.getByLabel('Resolution').fill('customer paid by bank transfer; credited by hand');
  await card.getByRole('button', { name: 'Resolve' }).click();
  await expect(page.getByRole('listitem').filter({ hasText: `payment ${cs.paymentId}` })).toHaveCount(0);

  const all = await restOK<ReviewItems>(people.ops, 'GET', '/v1/payment-review-items?includeResolved=true');
  const resolved = all.items.find((i) => i.id === item!.id);
  expect(resolved?.resolvedAt).toBeTruthy();
  expect(resolved?.resolvedBy).toBe(people.ops.sub);
  expect(resolved?.resolution).toBe('customer paid by bank transfer; credited by hand');
  await page.getByLabel('Include resolved items').check();
  await expect(page.getByRole('listitem').filter({ hasText: `payment ${cs.paymentId}` })).toContainText('customer paid by bank transfer');
  await shot(page, '19-ops-resolved');
});
