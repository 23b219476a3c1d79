import { expect, test } from '@playwright/test';
import { balance, debitUsage, nanos, rest, restOK } from '../lib/api';
import { messages } from '../lib/mailpit';
import { people } from '../lib/tokens';
import { deliverCheckoutCompleted } from '../lib/webhook';

test('api parts', async () => {
  console.log(await balance(people.ada));
  // credit via checkout + local pay
  const cs = await restOK<any>(people.ada, 'POST', '/v1/orgs/acme/checkout-sessions', { amount: { currencyCode: 'USD', units: '25', nanos: 0 } });
  console.log(cs);
  const pay = await fetch(`${cs.url}/pay`, { method: 'POST', body: new URLSearchParams({ method: 'card' }), redirect: 'manual' });
  console.log('pay', pay.status, pay.headers.get('location'));
  await expect.poll(async () => nanos((await balance(people.ada)).balance)).toBe(25_000_000_000n);
  console.log(JSON.stringify(await debitUsage('acme', 'llama-3.1-70b-instruct', { input_tokens: '8000000', output_tokens: '2000000' }, 'k' + Date.now())).slice(0, 300));
  console.log(await balance(people.ada));
  const cs2 = await restOK<any>(people.ada, 'POST', '/v1/orgs/acme/checkout-sessions', { amount: { currencyCode: 'USD', units: '15', nanos: 0 } });
  const d = await deliverCheckoutCompleted({ sessionId: cs2.sessionId, paymentId: cs2.paymentId, orgId: 'acme', memberId: 'user-ada', amountTotal: 100, currency: 'USD' });
  console.log(d);
  console.log(JSON.stringify(await restOK(people.ops, 'GET', '/v1/payment-review-items')));
  console.log((await rest(people.wile, 'GET', '/v1/orgs/acme/balance')));
  console.log(JSON.stringify(await restOK(people.ops, 'GET', '/v1/notifications/deliveries?orgId=acme')).slice(0, 500));
  console.log((await messages()).length);
});
