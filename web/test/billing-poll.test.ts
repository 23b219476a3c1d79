import { describe, expect, it } from 'vitest';
import type { PaymentsResponse } from '../src/api/types';
import { checkoutPayment, pollUntilSettled, pollWhilePending } from '../src/pages/billing-poll';

const page = (...payments: { id: string; status: string; checkoutSessionId?: string }[]): PaymentsResponse =>
  ({ payments }) as PaymentsResponse;

describe('Billing polling', () => {
  it('polls the list every 5 s while a payment of the page is pending, else not', () => {
    expect(pollWhilePending(undefined)).toBe(false);
    expect(pollWhilePending(page())).toBe(false);
    expect(pollWhilePending(page({ id: 'a', status: 'PAYMENT_STATUS_SUCCEEDED' }))).toBe(false);
    expect(
      pollWhilePending(page({ id: 'a', status: 'PAYMENT_STATUS_SUCCEEDED' }, { id: 'b', status: 'PAYMENT_STATUS_PENDING' })),
    ).toBe(5_000);
  });

  it('polls after Checkout every 2 s until the session’s payment has a final status', () => {
    const poll = pollUntilSettled('cs_1');
    expect(poll(undefined)).toBe(2_000); // not loaded yet
    expect(poll(page({ id: 'x', status: 'PAYMENT_STATUS_SUCCEEDED', checkoutSessionId: 'cs_0' }))).toBe(2_000); // not listed yet
    expect(poll(page({ id: 'a', status: 'PAYMENT_STATUS_PENDING', checkoutSessionId: 'cs_1' }))).toBe(2_000);
    for (const status of ['PAYMENT_STATUS_SUCCEEDED', 'PAYMENT_STATUS_FAILED', 'PAYMENT_STATUS_EXPIRED']) {
      expect(poll(page({ id: 'a', status, checkoutSessionId: 'cs_1' }))).toBe(false);
    }
  });

  it('finds the payment of a Checkout session, none for an empty session id', () => {
    const data = page({ id: 'a', status: 'PAYMENT_STATUS_PENDING', checkoutSessionId: 'cs_1' }, { id: 'b', status: 'PAYMENT_STATUS_PENDING' });
    expect(checkoutPayment(data, 'cs_1')?.id).toBe('a');
    expect(checkoutPayment(data, 'cs_2')).toBeUndefined();
    expect(checkoutPayment(data, '')).toBeUndefined();
  });
});
