// Unit-level harness: the real App (router, query client, session) over a fetch stub at the
// network boundary. Each route answers from a table; anything unlisted is a 404 the test sees.
import { render } from '@testing-library/react';
import { QueryClientProvider } from '@tanstack/react-query';
import { MemoryRouter } from 'react-router';
import { vi } from 'vitest';
import { App, makeQueryClient } from '../src/App';
import type { Me } from '../src/auth/me';

export type Handler = (req: Request, url: URL) => Response | Promise<Response>;

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

export const never: Handler = () => new Promise<Response>(() => undefined);
export const fail500: Handler = () => json({ code: 13, message: 'internal error' }, 500);
export const fail403: Handler = () => json({ code: 7, message: 'permission denied' }, 403);

export const ada: Me = {
  subject: 'user-ada',
  name: 'Ada Lovelace',
  email: 'ada@acme.test',
  orgId: 'acme',
  roles: ['member'],
  csrfToken: 'csrf-123',
  expiresAt: '2026-12-02T00:00:00Z',
};
export const grace: Me = { ...ada, subject: 'user-grace', name: 'Grace Hopper', roles: ['admin'] };
export const ops: Me = { ...ada, subject: 'ops-dev', name: 'Ops', orgId: '', roles: ['ops'] };

export const usd = (units: string, nanos = 0) => ({ currencyCode: 'USD', units, nanos });

export interface Calls {
  requests: Request[];
  bodies: unknown[];
}

/** Stubs fetch with `routes` ("GET /v1/orgs/acme/balance" → handler) on top of the header's defaults. */
export function stubFetch(routes: Record<string, Handler>, me: Me = ada): Calls {
  const calls: Calls = { requests: [], bodies: [] };
  const table: Record<string, Handler> = {
    'GET /auth/me': () => json(me),
    [`GET /v1/orgs/${me.orgId}/balance`]: () =>
      json({ orgId: me.orgId, balance: usd('42', 500000000), available: usd('42', 500000000), expiresAt: '2027-03-01T00:00:00Z' }),
    [`GET /v1/orgs/${me.orgId}/auto-recharge`]: () => json({ rule: { enabled: false, monthSpent: usd('0') } }),
    [`GET /v1/orgs/${me.orgId}/members/me/notification-settings`]: () =>
      json({ settings: { orgId: me.orgId, memberId: me.subject, lowCreditAlertEnabled: false } }),
    [`GET /v1/orgs/${me.orgId}/spend-limit`]: () =>
      json({ spendLimit: { orgId: me.orgId, limit: usd('0'), month: '2026-12', monthSpend: usd('0'), remaining: usd('0') } }),
    [`GET /v1/orgs/${me.orgId}/project-limits`]: () => json({ month: '2026-12', projectLimits: [] }),
    ...routes,
  };
  const fetchStub = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(input, init);
    const url = new URL(req.url);
    calls.requests.push(req.clone());
    if (req.method !== 'GET') {
      const text = await req.clone().text();
      calls.bodies.push(text === '' ? undefined : JSON.parse(text));
    }
    const handler = table[`${req.method} ${url.pathname}`];
    if (!handler) return json({ code: 5, message: `no stub for ${req.method} ${url.pathname}` }, 404);
    return handler(req, url);
  });
  vi.stubGlobal('fetch', fetchStub);
  return calls;
}

export function renderApp(path: string) {
  const client = makeQueryClient();
  client.setDefaultOptions({ queries: { ...client.getDefaultOptions().queries, retry: false } });
  return render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[path]}>
        <App />
      </MemoryRouter>
    </QueryClientProvider>,
  );
}
