// How the Billing page polls its payments: derived from what the last answer holds, so that no
// state has to be kept in step with it.
import type { Payment, PaymentsResponse } from '../api/types';

export const PENDING = 'PAYMENT_STATUS_PENDING';

/** Poll interval of the payments list: every 5 s while a payment of the page is still pending. */
export function pollWhilePending(data: PaymentsResponse | undefined): number | false {
  return (data?.payments ?? []).some((p) => p.status === PENDING) ? 5_000 : false;
}

/** The payment of a Checkout session in a page of payments ("" finds none). */
export function checkoutPayment(data: PaymentsResponse | undefined, sessionId: string): Payment | undefined {
  if (sessionId === '') return undefined;
  return data?.payments?.find((p) => p.checkoutSessionId === sessionId);
}

/**
 * Poll interval after a successful Checkout: every 2 s until the session's payment is listed with
 * a final status (the processor may confirm it after the redirect).
 */
export function pollUntilSettled(sessionId: string) {
  return (data: PaymentsResponse | undefined): number | false => {
    const status = checkoutPayment(data, sessionId)?.status;
    return status !== undefined && status !== PENDING ? false : 2_000;
  };
}
