import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fail403, fail500, json, never, renderApp, stubFetch, usd } from './helpers';
import { expectError, expectForbidden, expectLoading, expectOneH1 } from './states';
import { usageCsv, usageRows, type UsageSummary } from '../src/pages/usage-data';

const summary: UsageSummary = {
  orgId: 'acme',
  currencyCode: 'USD',
  from: '2026-11-29',
  to: '2026-11-30',
  days: [
    { day: '2026-11-29', total: usd('0'), items: [] },
    {
      day: '2026-11-30',
      total: usd('3', 250000000),
      items: [
        { kind: 'model', id: 'gpt-x', amount: usd('1', 1), count: '3' },
        { kind: 'instance', id: 'a100', amount: usd('2', 249999999), count: '1' },
      ],
    },
  ],
  totals: [
    { kind: 'instance', id: 'a100', amount: usd('2', 249999999), count: '1' },
    { kind: 'model', id: 'gpt-x', amount: usd('1', 1), count: '3' },
  ],
} as unknown as UsageSummary;

const tx = () =>
  json({
    transactions: [
      {
        id: 'tx1',
        kind: 'TRANSACTION_KIND_DEBIT',
        amount: usd('-1', -1),
        balanceAfter: usd('41', 499999999),
        description: 'gpt-x call',
        createdAt: '2026-11-30T12:00:00Z',
      },
    ],
  });

describe('Usage page', () => {
  it('shows loading', async () => {
    stubFetch({ 'GET /v1/orgs/acme/usage-summary': never, 'GET /v1/orgs/acme/transactions': never });
    renderApp('/usage');
    await expectOneH1('Usage');
    await expectLoading('Loading usage…');
    await expectLoading('Loading transactions…');
  });

  it('shows the empty states', async () => {
    stubFetch({
      'GET /v1/orgs/acme/usage-summary': () => json({ ...summary, totals: [], days: [{ day: '2026-11-30', total: usd('0'), items: [] }] }),
      'GET /v1/orgs/acme/transactions': () => json({ transactions: [] }),
    });
    renderApp('/usage');
    expect(await screen.findByText('No credits were consumed in the last 30 days.')).toBeInTheDocument();
    expect(await screen.findByText('No transactions yet.')).toBeInTheDocument();
  });

  it('shows errors', async () => {
    stubFetch({ 'GET /v1/orgs/acme/usage-summary': fail500, 'GET /v1/orgs/acme/transactions': fail500 });
    renderApp('/usage');
    await expectError();
  });

  it('says forbidden on 403', async () => {
    stubFetch({ 'GET /v1/orgs/acme/usage-summary': fail403, 'GET /v1/orgs/acme/transactions': fail403 });
    renderApp('/usage');
    await expectForbidden();
  });

  it('tabulates the spend by model and by instance, and the transaction history', async () => {
    const calls = stubFetch({ 'GET /v1/orgs/acme/usage-summary': () => json(summary), 'GET /v1/orgs/acme/transactions': tx });
    renderApp('/usage');
    const table = await screen.findByRole('table', { name: /Credits consumed per day by model/ });
    expect(within(table).getByRole('columnheader', { name: 'gpt-x' })).toBeInTheDocument();
    expect(within(table).getAllByText('$1.000000001').length).toBeGreaterThan(0);
    await userEvent.click(screen.getByRole('radio', { name: 'By instance' }));
    const byInstance = await screen.findByRole('table', { name: /by instance/ });
    expect(within(byInstance).getByRole('columnheader', { name: 'a100' })).toBeInTheDocument();
    expect(await screen.findByText('gpt-x call')).toBeInTheDocument();
    expect(screen.getByText('-$1.000000001')).toBeInTheDocument();
    expect(new URL(calls.requests.find((r) => r.url.includes('usage-summary'))!.url).searchParams.get('days')).toBe('30');
  });
});

describe('usage data', () => {
  it('builds the CSV from exact strings', () => {
    expect(usageCsv(summary)).toBe(
      'day,kind,id,amount,currency,count\r\n2026-11-30,model,gpt-x,1.000000001,USD,3\r\n2026-11-30,instance,a100,2.249999999,USD,1\r\n',
    );
  });
  it('keeps every day of the window', () => {
    const rows = usageRows(summary, 'model');
    expect(rows.map((r) => r.day)).toEqual(['2026-11-29', '2026-11-30']);
    expect(rows[1]!.total).toEqual(usd('1', 1));
  });
});

describe('Transaction history filter', () => {
  it('asks for one kind of transaction and pages from the first page', async () => {
    const calls = stubFetch({ 'GET /v1/orgs/acme/usage-summary': () => json(summary), 'GET /v1/orgs/acme/transactions': tx });
    renderApp('/usage');
    await screen.findByText('gpt-x call');
    await userEvent.selectOptions(screen.getByLabelText('Show'), 'Credits');
    await waitFor(() =>
      expect(calls.requests.some((r) => new URL(r.url).searchParams.get('kind') === 'TRANSACTION_KIND_CREDIT')).toBe(true),
    );
  });
});
