import { describe, expect, it, vi } from 'vitest';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ada, fail500, json, renderApp, stubFetch, usd } from './helpers';
import { nav } from '../src/nav';
import { VALIDITY_NOTE, validateAmount } from '../src/components/AddCreditsDialog';
import { addMonths, formatDay } from '../src/dates';

const options = () =>
  json({
    minAmount: usd('5'),
    maxAmount: usd('1000'),
    presets: [usd('10'), usd('25'), usd('50')],
    currencyCode: 'USD',
    validityMonths: 3,
  });
const quiet = {
  'GET /v1/orgs/acme/usage-summary': () => json({ days: [], totals: [] }),
  'GET /v1/orgs/acme/transactions': () => json({}),
};

async function openModal() {
  await userEvent.click(await screen.findByRole('button', { name: /^Balance/ }));
  await userEvent.click(await screen.findByRole('menuitem', { name: 'Add Credits' }));
  return screen.findByRole('dialog', { name: 'Add Credits' });
}

describe('validateAmount', () => {
  const limits = { currencyCode: 'USD', minAmount: usd('5'), maxAmount: usd('1000') };
  it.each([
    ['', 'Enter an amount.'],
    ['ten', 'Enter a number such as 25 or 25.50.'],
    ['0', 'The amount must be more than zero.'],
    ['4.99', 'The minimum is $5.00.'],
    ['1000.01', 'The maximum is $1,000.00.'],
    ['25.555', 'Use at most 2 decimal places.'],
    ['-5', 'The amount must be positive.'],
  ])('%j → %s', (input, error) => {
    expect(validateAmount(input, limits)).toEqual({ ok: false, error });
  });
  it.each([
    ['5', usd('5')],
    ['1000', usd('1000')],
    ['25.50', usd('25', 500000000)],
  ])('%j is accepted', (input, amount) => {
    expect(validateAmount(input, limits)).toEqual({ ok: true, amount });
  });
});

describe('Add Credits modal', () => {
  it('states the validity and the new expiry date, and validates against the server limits', async () => {
    stubFetch({ ...quiet, 'GET /v1/orgs/acme/checkout-options': options });
    renderApp('/usage');
    const dialog = await openModal();
    const d = within(dialog);
    expect(await d.findByText(VALIDITY_NOTE)).toBeInTheDocument();
    expect(d.getByText(formatDay(addMonths(new Date(), 3)))).toBeInTheDocument();
    expect(d.getByText('From $5.00 to $1,000.00.')).toBeInTheDocument();
    const input = d.getByLabelText('Amount (USD)');
    await userEvent.type(input, '2');
    await userEvent.click(d.getByRole('button', { name: 'Go to Checkout' }));
    expect(await d.findByText('The minimum is $5.00.')).toBeInTheDocument();
    expect(input).toHaveAttribute('aria-invalid', 'true');
    await userEvent.clear(input);
    await userEvent.type(input, '5000');
    expect(await d.findByText('The maximum is $1,000.00.')).toBeInTheDocument();
    await userEvent.click(d.getByRole('button', { name: '$25.00' }));
    expect(input).toHaveValue('25.00');
    expect(d.queryByRole('alert')).toBeNull();
  });

  it('goes to checkout with the exact amount and the CSRF token', async () => {
    const assign = vi.spyOn(nav, 'assign').mockImplementation(() => undefined);
    const calls = stubFetch({
      ...quiet,
      'GET /v1/orgs/acme/checkout-options': options,
      'POST /v1/orgs/acme/checkout-sessions': () => json({ url: 'http://localhost:8093/checkout/cs_1', sessionId: 'cs_1', paymentId: 'pay_1' }),
    });
    renderApp('/usage');
    const d = within(await openModal());
    await userEvent.type(await d.findByLabelText('Amount (USD)'), '25.50');
    await userEvent.click(d.getByRole('button', { name: 'Go to Checkout' }));
    await waitFor(() => expect(assign).toHaveBeenCalledWith('http://localhost:8093/checkout/cs_1'));
    expect(calls.bodies.at(-1)).toEqual({ amount: usd('25', 500000000) });
    const post = calls.requests.find((r) => r.method === 'POST')!;
    expect(post.headers.get('X-CSRF-Token')).toBe(ada.csrfToken);
  });

  it('shows the error when checkout options cannot be loaded', async () => {
    stubFetch({ ...quiet, 'GET /v1/orgs/acme/checkout-options': fail500 });
    renderApp('/usage');
    const d = within(await openModal());
    expect(await d.findByText(/Could not load this/)).toBeInTheDocument();
  });
});
