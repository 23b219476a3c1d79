import { describe, expect, it } from 'vitest';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ada, fail403, fail500, json, never, ops, renderApp, stubFetch, usd } from './helpers';
import { expectError, expectForbidden, expectLoading, expectOneH1 } from './states';

describe('Ops page', () => {
  it('is forbidden without the ops role, and not in the nav', async () => {
    stubFetch({}, ada);
    renderApp('/ops');
    await expectForbidden();
    expect(screen.queryByRole('link', { name: 'Ops' })).toBeNull();
  });
  it('shows loading', async () => {
    stubFetch({ 'GET /v1/payment-review-items': never }, ops);
    renderApp('/ops');
    await expectOneH1('Ops');
    expect(screen.getByRole('link', { name: 'Ops' })).toBeInTheDocument();
    await expectLoading('Loading review items…');
  });
  it('shows the empty state', async () => {
    stubFetch({ 'GET /v1/payment-review-items': () => json({}) }, ops);
    renderApp('/ops');
    expect(await screen.findByText('Nothing to review.')).toBeInTheDocument();
  });
  it('shows errors', async () => {
    stubFetch({ 'GET /v1/payment-review-items': fail500 }, ops);
    renderApp('/ops');
    await expectError();
  });
  it('says forbidden on 403', async () => {
    stubFetch({ 'GET /v1/payment-review-items': fail403 }, ops);
    renderApp('/ops');
    await expectForbidden();
  });
  it('resolves a review item', async () => {
    let resolved = false;
    const calls = stubFetch(
      {
        'GET /v1/payment-review-items': () =>
          json({
            items: [
              {
                id: 'rev_1',
                paymentId: 'pay_1',
                orgId: 'acme',
                kind: 'dispute',
                detail: 'card disputed',
                createdAt: '2026-11-30T00:00:00Z',
                ...(resolved ? { resolvedAt: '2026-11-30T01:00:00Z', resolvedBy: 'ops-dev', resolution: 'accepted' } : {}),
              },
            ],
          }),
        'POST /v1/payment-review-items/rev_1/resolve': () => {
          resolved = true;
          return json({ item: { id: 'rev_1' } });
        },
      },
      ops,
    );
    renderApp('/ops');
    await userEvent.type(await screen.findByLabelText('Resolution'), 'accepted');
    await userEvent.click(screen.getByRole('button', { name: 'Resolve' }));
    expect(await screen.findByText(/Resolved .* by ops-dev: accepted/)).toBeInTheDocument();
    expect(calls.bodies.at(-1)).toEqual({ resolution: 'accepted' });
  });
  it('reuses the idempotency key when a grant is retried, and makes a new one for the next grant', async () => {
    let attempt = 0;
    const calls = stubFetch(
      {
        'GET /v1/payment-review-items': () => json({}),
        'POST /v1/orgs/acme/credits': () => {
          attempt += 1;
          return attempt === 1
            ? json({ code: 14, message: 'ledger unavailable' }, 503)
            : json({ transaction: { amount: usd('5') }, balance: usd('47', 500000000) });
        },
      },
      ops,
    );
    renderApp('/ops');
    await userEvent.click(await screen.findByRole('tab', { name: 'Grants and adjustments' }));
    const grant = await screen.findByRole('region', { name: 'Grant credits' }).catch(() => null);
    void grant;
    const [orgInput] = screen.getAllByLabelText('Organization');
    await userEvent.type(orgInput!, 'acme');
    const [amountInput] = screen.getAllByLabelText('Amount');
    await userEvent.type(amountInput!, '5');
    const [reasonInput] = screen.getAllByLabelText('Reason');
    await userEvent.type(reasonInput!, 'goodwill');
    await userEvent.click(screen.getByRole('button', { name: 'Grant credits' }));
    expect(await screen.findByText(/ledger unavailable/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Grant credits' }));
    expect(await screen.findByText(/Granted \$5.00; balance now \$47.50/)).toBeInTheDocument();
    const [first, second] = calls.bodies as { idempotencyKey: string; source: string; amount: unknown }[];
    expect(first!.idempotencyKey).toMatch(/^console-/);
    expect(second!.idempotencyKey).toBe(first!.idempotencyKey);
    expect(first!.source).toBe('CREDIT_SOURCE_GRANT');
    expect(first!.amount).toEqual(usd('5'));
    await userEvent.click(screen.getByRole('button', { name: 'Grant credits' }));
    await screen.findByText(/Granted/);
    expect((calls.bodies[2] as { idempotencyKey: string }).idempotencyKey).not.toBe(first!.idempotencyKey);
  });
  it('adjusts a balance by a signed amount, with no grant source', async () => {
    const calls = stubFetch(
      {
        'GET /v1/payment-review-items': () => json({}),
        'POST /v1/orgs/acme/adjustments': () =>
          json({ transaction: { amount: usd('-12', -500000000) }, balance: usd('30') }),
      },
      ops,
    );
    renderApp('/ops');
    await userEvent.click(await screen.findByRole('tab', { name: 'Grants and adjustments' }));
    const form = (await screen.findByRole('heading', { name: 'Adjust a balance' })).closest('section')!;
    const adjust = within(form);
    expect(adjust.getByText('Positive adds credits, negative removes them, e.g. -12.50.')).toBeInTheDocument();
    await userEvent.type(adjust.getByLabelText('Organization'), 'acme');
    await userEvent.type(adjust.getByLabelText('Signed amount'), '-12.50');
    await userEvent.click(adjust.getByRole('button', { name: 'Adjust balance' }));
    expect(await adjust.findByRole('alert')).toHaveTextContent('Enter the reason.');
    expect(calls.bodies).toHaveLength(0);
    await userEvent.type(adjust.getByLabelText('Reason'), 'correction');
    await userEvent.click(adjust.getByRole('button', { name: 'Adjust balance' }));
    expect(await adjust.findByText(/Adjusted by -\$12.50; balance now \$30.00/)).toBeInTheDocument();
    const body = calls.bodies.at(-1) as { idempotencyKey: string; reason: string; amount: unknown; source?: string };
    expect(body.amount).toEqual(usd('-12', -500000000));
    expect(body.reason).toBe('correction');
    expect(body.idempotencyKey).toMatch(/^console-/);
    expect(body.source).toBeUndefined();
  });
});
