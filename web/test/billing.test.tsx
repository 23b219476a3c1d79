import { describe, expect, it } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ada, fail403, fail500, grace, json, never, renderApp, stubFetch, usd } from './helpers';
import { expectError, expectForbidden, expectLoading, expectOneH1 } from './states';

const profile = () => json({ profile: { legalName: 'Acme Inc.', address: '1 Road\nTown', taxId: 'US123', email: 'billing@acme.test' } });

const paid = {
  id: 'pay_1',
  orgId: 'acme',
  amount: usd('25', 500000000),
  status: 'PAYMENT_STATUS_SUCCEEDED',
  member: { id: 'user-ada', name: 'Ada Lovelace', email: 'ada@acme.test' },
  invoiceNumber: 'INV-2026-0001',
  checkoutSessionId: 'cs_1',
  createdAt: '2026-11-30T10:00:00Z',
  paidAt: '2026-11-30T10:01:00Z',
};

describe('Billing page', () => {
  it('shows loading while payments load', async () => {
    stubFetch({ 'GET /v1/orgs/acme/payments': never, 'GET /v1/orgs/acme/billing-profile': profile });
    renderApp('/billing');
    await expectOneH1('Billing');
    await expectLoading('Loading payments…');
  });

  it('shows the empty state', async () => {
    stubFetch({ 'GET /v1/orgs/acme/payments': () => json({ payments: [] }), 'GET /v1/orgs/acme/billing-profile': profile });
    renderApp('/billing');
    expect(await screen.findByText(/No payments yet/)).toBeInTheDocument();
  });

  it('shows an error with a retry', async () => {
    stubFetch({ 'GET /v1/orgs/acme/payments': fail500, 'GET /v1/orgs/acme/billing-profile': profile });
    renderApp('/billing');
    await expectError();
  });

  it('says forbidden on 403', async () => {
    stubFetch({ 'GET /v1/orgs/acme/payments': fail403, 'GET /v1/orgs/acme/billing-profile': fail403 });
    renderApp('/billing');
    await expectForbidden();
  });

  it('lists payments with date, amount, status, member and a Download invoice link', async () => {
    stubFetch({
      'GET /v1/orgs/acme/payments': () =>
        json({
          payments: [
            paid,
            { ...paid, id: 'pay_0', status: 'PAYMENT_STATUS_EXPIRED', invoiceNumber: '', checkoutSessionId: 'cs_0', paidAt: undefined },
          ],
          nextPageToken: 'next-1',
        }),
      'GET /v1/orgs/acme/billing-profile': profile,
    });
    renderApp('/billing');
    const table = await screen.findByRole('table');
    const rows = within(table).getAllByRole('row');
    expect(rows).toHaveLength(3);
    const first = within(rows[1]!);
    expect(first.getByText('$25.50')).toBeInTheDocument();
    expect(first.getByText('Paid')).toBeInTheDocument();
    expect(first.getByText('Ada Lovelace')).toBeInTheDocument();
    expect(first.getByText('INV-2026-0001')).toBeInTheDocument();
    const link = first.getByRole('link', { name: 'Download invoice' });
    expect(link).toHaveAttribute('href', '/v1/orgs/acme/payments/pay_1/invoice');
    expect(link).toHaveAttribute('download', 'INV-2026-0001.pdf');
    expect(within(rows[2]!).getByText('Expired')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Next page' })).toBeEnabled();
    // a member sees the profile read-only
    expect(screen.getByText('Acme Inc.')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Save billing profile' })).toBeNull();
  });

  it('pages with the next page token', async () => {
    const calls = stubFetch({
      'GET /v1/orgs/acme/payments': (_req, url) =>
        url.searchParams.get('pageToken') === 'next-1'
          ? json({ payments: [{ ...paid, id: 'pay_9', invoiceNumber: 'INV-2026-0009' }] })
          : json({ payments: [paid], nextPageToken: 'next-1' }),
      'GET /v1/orgs/acme/billing-profile': profile,
    });
    renderApp('/billing');
    await screen.findByText('INV-2026-0001');
    await userEvent.click(screen.getByRole('button', { name: 'Next page' }));
    expect(await screen.findByText('INV-2026-0009')).toBeInTheDocument();
    expect(calls.requests.some((r) => new URL(r.url).searchParams.get('pageToken') === 'next-1')).toBe(true);
    expect(screen.getByRole('button', { name: 'Previous page' })).toBeEnabled();
  });

  it('shows a pending banner after checkout and polls until the payment is paid', async () => {
    let polls = 0;
    stubFetch({
      'GET /v1/orgs/acme/payments': () => {
        polls += 1;
        const status = polls < 2 ? 'PAYMENT_STATUS_PENDING' : 'PAYMENT_STATUS_SUCCEEDED';
        return json({ payments: [{ ...paid, status, invoiceNumber: status === 'PAYMENT_STATUS_PENDING' ? '' : paid.invoiceNumber }] });
      },
      'GET /v1/orgs/acme/billing-profile': profile,
    });
    renderApp('/billing?checkout=success&session_id=cs_1');
    expect(await screen.findByText(/Payment pending/)).toBeInTheDocument();
    expect(await screen.findByText(/Payment received: \$25.50/, {}, { timeout: 5000 })).toBeInTheDocument();
  });

  it('shows the cancelled banner', async () => {
    stubFetch({ 'GET /v1/orgs/acme/payments': () => json({ payments: [] }), 'GET /v1/orgs/acme/billing-profile': profile });
    renderApp('/billing?checkout=cancelled');
    expect(await screen.findByText('Checkout cancelled. Nothing was charged.')).toBeInTheDocument();
  });

  it('lets an admin save the billing profile with the CSRF token', async () => {
    const calls = stubFetch(
      {
        'GET /v1/orgs/acme/payments': () => json({ payments: [] }),
        'GET /v1/orgs/acme/billing-profile': () => json({ profile: {} }),
        'PUT /v1/orgs/acme/billing-profile': async (req) => json({ profile: await req.json() }),
      },
      grace,
    );
    renderApp('/billing');
    await userEvent.type(await screen.findByLabelText('Legal name'), 'Acme Inc.');
    await userEvent.click(screen.getByRole('button', { name: 'Save billing profile' }));
    expect(await screen.findByText('Billing profile saved.')).toBeInTheDocument();
    const put = calls.requests.find((r) => r.method === 'PUT')!;
    expect(put.headers.get('X-CSRF-Token')).toBe(ada.csrfToken);
    expect(calls.bodies.at(-1)).toMatchObject({ legalName: 'Acme Inc.' });
    await waitFor(() => expect(screen.getByLabelText('Legal name')).toHaveValue('Acme Inc.'));
  });
});
