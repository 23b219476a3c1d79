// The typed REST client, generated from pkg/gen/openapi/openapi.yaml (schema.d.ts). The browser
// sends the gateway's session cookie (same origin); writes carry the session's CSRF token.
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';
import { errorFromBody } from './errors';
import { redirectToLogin } from '../nav';

let csrfToken = '';

/** Set from GET /auth/me; it is not a credential (the cookie is, and JavaScript never sees it). */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

const session: Middleware = {
  onRequest({ request }) {
    if (!SAFE.has(request.method.toUpperCase()) && csrfToken !== '') {
      request.headers.set('X-CSRF-Token', csrfToken);
    }
    return request;
  },
  onResponse({ response }) {
    if (response.status === 401) redirectToLogin();
    return response;
  },
};

export const api = createClient<paths>({
  baseUrl: typeof window === 'undefined' ? 'http://localhost' : window.location.origin,
  credentials: 'same-origin',
  // Resolved at call time so a test's fetch stub is used.
  fetch: (req: Request) => globalThis.fetch(req),
});
api.use(session);

/** Returns the data of a call or throws an ApiError carrying the status. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw errorFromBody(response.status, error);
  return data as T;
}
