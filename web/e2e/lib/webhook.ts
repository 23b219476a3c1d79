// A Stripe webhook delivery as Stripe signs it (Stripe-Signature: t=<unix>,v1=<HMAC-SHA256 of
// "<t>.<body>">) to the gateway's webhook route. The test-mode stack verifies deliveries with the
// development webhook secret (services/payments/service: DevWebhookSecret).
import crypto from 'node:crypto';
import { stack } from './stack';

export const devWebhookSecret = 'whsec_tally_dev_secret';

export interface SessionEvent {
  sessionId: string;
  paymentId: string;
  orgId: string;
  memberId: string;
  /** In minor units of currency (cents). */
  amountTotal: number;
  currency: string;
}

/** Delivers checkout.session.completed (paid) for the session; returns the gateway's answer. */
export async function deliverCheckoutCompleted(e: SessionEvent): Promise<{ status: number; body: string }> {
  const now = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({
    id: `evt_e2e_${crypto.randomBytes(8).toString('hex')}`,
    object: 'event',
    type: 'checkout.session.completed',
    api_version: '2023-10-16',
    created: now,
    livemode: false,
    pending_webhooks: 1,
    data: {
      object: {
        id: e.sessionId,
        object: 'checkout.session',
        status: 'complete',
        payment_status: 'paid',
        mode: 'payment',
        amount_total: e.amountTotal,
        currency: e.currency.toLowerCase(),
        payment_intent: `pi_e2e_${crypto.randomBytes(8).toString('hex')}`,
        payment_method_types: ['card'],
        client_reference_id: e.orgId,
        metadata: { tally_payment_id: e.paymentId, tally_org_id: e.orgId, tally_member_id: e.memberId },
        created: now,
        livemode: false,
      },
    },
  });
  const sig = crypto.createHmac('sha256', devWebhookSecret).update(`${now}.${body}`).digest('hex');
  const res = await fetch(`${stack().gatewayUrl}/v1/webhooks/stripe`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Stripe-Signature': `t=${now},v1=${sig}` },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.text() };
}
