import { describe, expect, it, vi } from 'vitest';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { grace, json, renderApp, stubFetch, usd } from './helpers';
import { nav } from '../src/nav';
import { cardText } from '../src/components/AutoRechargeSection';

const card = { brand: 'visa', last4: '4242', expMonth: 3, expYear: 2029, testMode: true, savedBy: { name: 'Grace Hopper' } };
const base = {
  'GET /v1/orgs/acme/payments': () => json({ payments: [] }),
  'GET /v1/orgs/acme/billing-profile': () => json({ profile: {} }),
};

describe('Auto-recharge on the Billing page', () => {
  it('formats the saved card with brand, last four and expiry', () => {
    expect(cardText(card)).toBe('Visa ending in 4242, expires 03/2029');
    expect(cardText({ brand: 'newbrand', last4: '0005', expMonth: 12, expYear: 2030 })).toBe('newbrand ending in 0005, expires 12/2030');
  });

  it('shows a member the card and the rule read-only', async () => {
    stubFetch({
      ...base,
      'GET /v1/orgs/acme/auto-recharge': () =>
        json({
          paymentMethod: card,
          rule: { enabled: true, threshold: usd('10'), amount: usd('25'), monthlyCap: usd('100'), monthSpent: usd('25') },
        }),
    });
    renderApp('/billing');
    const section = within((await screen.findByRole('heading', { name: 'Auto-recharge' })).closest('section')!);
    expect(await section.findByText('Visa ending in 4242, expires 03/2029')).toBeInTheDocument();
    expect(section.getByText('$10.00')).toBeInTheDocument();
    expect(section.getByText('$100.00 ($25.00 used this month)')).toBeInTheDocument();
    expect(section.queryByRole('button', { name: 'Remove' })).toBeNull();
    expect(section.queryByRole('button', { name: 'Save auto-recharge' })).toBeNull();
  });

  it('lets an admin add a card through the setup checkout', async () => {
    const assign = vi.spyOn(nav, 'assign').mockImplementation(() => undefined);
    const calls = stubFetch(
      { ...base, 'POST /v1/orgs/acme/payment-method/setup': () => json({ url: 'http://localhost:8093/checkout/test/setup/cs_1', sessionId: 'cs_1' }) },
      grace,
    );
    renderApp('/billing');
    expect(await screen.findByText('No card saved.')).toBeInTheDocument();
    expect(screen.getByRole('checkbox', { name: 'Enable auto-recharge' })).toBeDisabled();
    await userEvent.click(screen.getByRole('button', { name: 'Add card' }));
    await vi.waitFor(() => expect(assign).toHaveBeenCalledWith('http://localhost:8093/checkout/test/setup/cs_1'));
    expect(calls.requests.some((r) => r.method === 'POST' && r.url.endsWith('/payment-method/setup'))).toBe(true);
  });

  it('saves a target-balance rule with exact amounts', async () => {
    const calls = stubFetch(
      {
        ...base,
        'GET /v1/orgs/acme/auto-recharge': () => json({ paymentMethod: card, rule: { enabled: false, monthSpent: usd('0') } }),
        'PUT /v1/orgs/acme/auto-recharge': () => json({ rule: { enabled: true } }),
      },
      grace,
    );
    renderApp('/billing');
    await screen.findByText('Visa ending in 4242, expires 03/2029');
    await userEvent.click(screen.getByRole('checkbox', { name: 'Enable auto-recharge' }));
    await userEvent.type(screen.getByLabelText('When available credits fall below (USD)'), '10.50');
    await userEvent.click(screen.getByRole('radio', { name: 'Up to a target balance' }));
    await userEvent.type(screen.getByLabelText('Target balance (USD)'), '50');
    await userEvent.type(screen.getByLabelText('Monthly cap (USD)'), '200');
    await userEvent.click(screen.getByRole('button', { name: 'Save auto-recharge' }));
    expect(await screen.findByText('Auto-recharge saved.')).toBeInTheDocument();
    const put = calls.bodies.at(-1);
    expect(put).toEqual({
      enabled: true,
      threshold: { currencyCode: 'USD', units: '10', nanos: 500000000 },
      targetBalance: { currencyCode: 'USD', units: '50', nanos: 0 },
      monthlyCap: { currencyCode: 'USD', units: '200', nanos: 0 },
    });
  });

  it('refuses a malformed amount before calling the API', async () => {
    const calls = stubFetch(
      { ...base, 'GET /v1/orgs/acme/auto-recharge': () => json({ paymentMethod: card, rule: { enabled: false } }) },
      grace,
    );
    renderApp('/billing');
    await screen.findByText('Visa ending in 4242, expires 03/2029');
    await userEvent.click(screen.getByRole('checkbox', { name: 'Enable auto-recharge' }));
    await userEvent.type(screen.getByLabelText('When available credits fall below (USD)'), '1.234');
    await userEvent.click(screen.getByRole('button', { name: 'Save auto-recharge' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('The threshold: Use at most 2 decimal places.');
    expect(calls.requests.some((r) => r.method === 'PUT')).toBe(false);
  });

  it('removes the card', async () => {
    const calls = stubFetch(
      {
        ...base,
        'GET /v1/orgs/acme/auto-recharge': () => json({ paymentMethod: card, rule: { enabled: false } }),
        'DELETE /v1/orgs/acme/payment-method': () => json({}),
      },
      grace,
    );
    renderApp('/billing');
    await userEvent.click(await screen.findByRole('button', { name: 'Remove' }));
    await vi.waitFor(() => expect(calls.requests.some((r) => r.method === 'DELETE')).toBe(true));
  });

  it('says the rule was turned off after failures', async () => {
    stubFetch({
      ...base,
      'GET /v1/orgs/acme/auto-recharge': () =>
        json({
          paymentMethod: card,
          rule: {
            enabled: false,
            consecutiveFailures: 3,
            disabledReason: 'disabled after 3 failed recharges in a row; update the card and enable it again',
          },
        }),
    });
    renderApp('/billing');
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'Auto-recharge was turned off: disabled after 3 failed recharges in a row',
    );
  });

  it('marks automatic payments in the payments list', async () => {
    stubFetch({
      'GET /v1/orgs/acme/billing-profile': () => json({ profile: {} }),
      'GET /v1/orgs/acme/payments': () =>
        json({
          payments: [
            { id: 'p2', amount: usd('20'), status: 'PAYMENT_STATUS_FAILED', automatic: true, failureReason: 'declined', createdAt: '2026-12-01T10:00:00Z' },
            { id: 'p1', amount: usd('20'), status: 'PAYMENT_STATUS_SUCCEEDED', automatic: true, invoiceNumber: 'INV-2026-000009', createdAt: '2026-12-01T09:00:00Z' },
            { id: 'p0', amount: usd('5'), status: 'PAYMENT_STATUS_SUCCEEDED', invoiceNumber: 'INV-2026-000008', createdAt: '2026-12-01T08:00:00Z' },
          ],
        }),
    });
    renderApp('/billing');
    const rows = within(await screen.findByRole('table')).getAllByRole('row');
    expect(within(rows[1]!).getByText('Automatic')).toBeInTheDocument();
    expect(within(rows[1]!).getByText('Card declined')).toBeInTheDocument();
    expect(within(rows[2]!).getByText('Automatic')).toBeInTheDocument();
    expect(within(rows[2]!).getByRole('link', { name: 'Download invoice' })).toBeInTheDocument();
    expect(within(rows[3]!).queryByText('Automatic')).toBeNull();
  });
});
