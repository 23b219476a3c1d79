// Settings → Limits: an administrator caps acme's monthly spending; once the month's charges reach
// the cap, the model backend's Authorize is refused with SPEND_LIMIT_REACHED and a require_funds
// Debit fails, while usage that already happened is still recorded; the alert email arrives; a
// member reads the limit without being able to change it. The limit is removed at the end, so the
// other tests' organization spends freely again. Then a per-project limit: reached, only that
// project's calls are refused (the refusal names it), and the administrator removes it.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { nanos, restOK, type Money } from '../lib/api';
import { expectAccessible } from '../lib/axe';
import { openConsole, type Console } from '../lib/browser';
import { messagesTo } from '../lib/mailpit';
import { binDir } from '../lib/paths';
import { shot } from '../lib/shots';
import { signIn } from '../lib/signin';
import { poll, stack } from '../lib/stack';
import { mintToken, people } from '../lib/tokens';

const run = promisify(execFile);

interface SpendLimit {
  spendLimit: { limit?: Money; monthSpend?: Money; reached?: boolean; alertPercent?: number };
}

/** Calls LedgerService as the model backend does (grpcurl); a refusal resolves with its text. */
async function backend(method: string, req: unknown): Promise<{ ok: boolean; out: string }> {
  const ledger = stack().grpc.ledger;
  if (!ledger) throw new Error('the stack has no ledger');
  try {
    const { stdout } = await run(
      path.join(binDir, 'grpcurl'),
      ['-plaintext', '-max-time', '10', '-H', `authorization: Bearer ${mintToken(people.backend)}`, '-d', JSON.stringify(req), ledger, `tally.ledger.v1.LedgerService/${method}`],
      { timeout: 15_000 },
    );
    return { ok: true, out: stdout };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const usd = (n: bigint): Money => ({ currencyCode: 'USD', units: String(n / 1_000_000_000n), nanos: Number(n % 1_000_000_000n) });

let c: Console | undefined;

test.afterEach(async ({}, testInfo) => {
  if (c && testInfo.status !== testInfo.expectedStatus) {
    await c.page.screenshot({ path: testInfo.outputPath('failure.png'), fullPage: true }).catch(() => undefined);
  }
  await c?.close();
  c = undefined;
  await restOK(people.grace, 'PUT', '/v1/orgs/acme/spend-limit', { limit: usd(0n), alertPercent: 0 });
  if (project !== '') await restOK(people.grace, 'PUT', `/v1/orgs/acme/project-limits/${project}`, { limit: usd(0n) });
  project = '';
});

let project = '';

test('24 an administrator sets a monthly spend limit; reached, new calls are refused, usage is still recorded', async () => {
  const stamp = Date.now();
  // Credits enough that only the limit, not the balance, refuses (ops grants them).
  await restOK(people.ops, 'POST', '/v1/orgs/acme/credits', {
    amount: usd(100_000_000_000n), idempotencyKey: `e2e-limits-grant-${stamp}`, reason: 'e2e: spend limit test', source: 'CREDIT_SOURCE_GRANT',
  });
  const before = await restOK<SpendLimit>(people.grace, 'GET', '/v1/orgs/acme/spend-limit');
  const spent = nanos(before.spendLimit.monthSpend);
  const limit = ((spent / 1_000_000_000n) + 2n) * 1_000_000_000n; // the next whole dollar and one more

  c = await openConsole();
  const page = c.page;
  await signIn(page, 'Grace Hopper', '/settings/notifications');
  const section = page.locator('section', { has: page.getByRole('heading', { level: 2, name: 'Limits' }) });
  await expect(section.getByTestId('spend-limit')).toHaveText('No limit');
  await section.getByLabel('Monthly spend limit (USD)').fill(String(limit / 1_000_000_000n));
  await section.getByLabel('Alert email at (% of the limit)').fill('100');
  await section.getByRole('button', { name: 'Save limit' }).click();
  await expect(section.getByText('Spend limit saved.')).toBeVisible();
  await expect(section.getByTestId('spend-limit')).toHaveText(`$${limit / 1_000_000_000n}.00`);
  await expectAccessible(page, 'the Limits section', 'main');
  await shot(page, '24-limits-set');

  // The model backend charges exactly what remains: the limit is reached.
  const remaining = limit - spent;
  const fill = await backend('Debit', { orgId: 'acme', amount: usd(remaining), idempotencyKey: `e2e-limit-fill-${stamp}`, requireFunds: true, description: 'e2e: reach the limit' });
  expect(fill.ok, fill.out).toBe(true);
  const auth = await backend('Authorize', { orgId: 'acme', amount: usd(1n) });
  expect(auth.ok, auth.out).toBe(true);
  expect(JSON.parse(auth.out)).toMatchObject({ denialReason: 'SPEND_LIMIT_REACHED' });
  expect(JSON.parse(auth.out).allowed ?? false).toBe(false);
  const refused = await backend('Debit', { orgId: 'acme', amount: usd(1n), idempotencyKey: `e2e-limit-refused-${stamp}`, requireFunds: true });
  expect(refused.ok).toBe(false);
  expect(refused.out).toContain('FailedPrecondition');
  expect(refused.out).toContain('SPEND_LIMIT_REACHED');
  const usage = await backend('Debit', { orgId: 'acme', amount: usd(1n), idempotencyKey: `e2e-limit-usage-${stamp}`, description: 'e2e: usage that already happened' });
  expect(usage.ok, usage.out).toBe(true);

  await page.reload();
  await expect(section.getByRole('alert')).toContainText('The monthly spend limit is reached');
  expect(nanos((await restOK<SpendLimit>(people.grace, 'GET', '/v1/orgs/acme/spend-limit')).spendLimit.monthSpend)).toBe(limit + 1n);
  await expectAccessible(page, 'the reached limit', 'main');
  await shot(page, '24-limits-reached');

  // The alert (100% of the limit) reaches the administrator once.
  await poll('the spend alert email', 30_000, async () => {
    const m = await messagesTo(people.grace.email, /monthly spend limit/);
    return m.length > 0 ? m : undefined;
  });

  // A member reads the limit and cannot change it.
  await c.close();
  c = await openConsole();
  await signIn(c.page, 'Ada Lovelace', '/settings/notifications');
  const memberSection = c.page.locator('section', { has: c.page.getByRole('heading', { level: 2, name: 'Limits' }) });
  await expect(memberSection.getByTestId('spend-limit')).toHaveText(`$${limit / 1_000_000_000n}.00`);
  await expect(memberSection.getByText('Only admins of your organization can change the spend limit.')).toBeVisible();
  await expect(memberSection.getByRole('button', { name: 'Save limit' })).toHaveCount(0);
  await shot(c.page, '24-limits-member');
});

test('25 an administrator caps one project; reached, only its calls are refused', async () => {
  const stamp = Date.now();
  project = `e2e-${stamp}`;
  await restOK(people.ops, 'POST', '/v1/orgs/acme/credits', {
    amount: usd(10_000_000_000n), idempotencyKey: `e2e-project-grant-${stamp}`, reason: 'e2e: project limit test', source: 'CREDIT_SOURCE_GRANT',
  });
  c = await openConsole();
  const page = c.page;
  await signIn(page, 'Grace Hopper', '/settings/notifications');
  const section = page.locator('section', { has: page.getByRole('heading', { level: 2, name: 'Limits' }) });
  await section.getByLabel('Project', { exact: true }).fill(project);
  await section.getByLabel('Project monthly limit (USD)').fill('2');
  await section.getByRole('button', { name: 'Save project limit' }).click();
  await expect(section.getByText(`Limit of ${project} saved.`)).toBeVisible();
  const row = section.getByTestId(`project-limit-${project}`);
  await expect(row).toContainText('$2.00');
  await expectAccessible(page, 'the project limits', 'main');
  await shot(page, '25-project-limit-set');

  const tagged = (key: string, n: bigint, requireFunds: boolean, p = project) =>
    backend('Debit', { orgId: 'acme', amount: usd(n), idempotencyKey: `e2e-project-${key}-${stamp}`, requireFunds, metadata: { project: p } });
  const fill = await tagged('fill', 2_000_000_000n, true);
  expect(fill.ok, fill.out).toBe(true);
  const auth = await backend('Authorize', { orgId: 'acme', amount: usd(1_000_000_000n), project });
  expect(auth.ok, auth.out).toBe(true);
  expect(JSON.parse(auth.out)).toMatchObject({ denialReason: 'SPEND_LIMIT_REACHED' });
  const other = await backend('Authorize', { orgId: 'acme', amount: usd(1_000_000_000n), project: `${project}-other` });
  expect(JSON.parse(other.out).allowed, other.out).toBe(true);
  const refused = await tagged('refused', 1_000_000_000n, true);
  expect(refused.ok).toBe(false);
  expect(refused.out).toContain('SPEND_LIMIT_REACHED');
  expect(refused.out).toContain(project);
  const otherDebit = await tagged('other', 1_000_000_000n, true, `${project}-other`);
  expect(otherDebit.ok, otherDebit.out).toBe(true);
  const usage = await tagged('usage', 1_000_000_000n, false);
  expect(usage.ok, usage.out).toBe(true);

  await page.reload();
  await expect(row).toContainText('Limit reached');
  await expect(row).toContainText('$3.00');
  await shot(page, '25-project-limit-reached');
  await section.getByRole('button', { name: `Remove the limit of ${project}` }).click();
  await expect(row).toHaveCount(0);
  project = '';
});
