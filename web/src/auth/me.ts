// GET /auth/me is the gateway's session endpoint (not part of the OpenAPI document): a small typed
// fetch. 401 means "not signed in".
import { ApiError, errorFromBody } from '../api/errors';

export type Role = 'member' | 'admin' | 'ops';

export interface Me {
  subject: string;
  name: string;
  email: string;
  orgId: string;
  roles: Role[];
  csrfToken: string;
  expiresAt: string;
}

export async function fetchMe(): Promise<Me> {
  const res = await globalThis.fetch(new Request(new URL('/auth/me', window.location.origin), {
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  }));
  let body: unknown = undefined;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (!res.ok) throw errorFromBody(res.status, body);
  const me = body as Partial<Me>;
  if (typeof me.subject !== 'string' || typeof me.csrfToken !== 'string') {
    throw new ApiError(res.status, 'The session answer is not understood.');
  }
  return {
    subject: me.subject,
    name: me.name ?? me.subject,
    email: me.email ?? '',
    orgId: me.orgId ?? '',
    roles: Array.isArray(me.roles) ? me.roles : [],
    csrfToken: me.csrfToken,
    expiresAt: me.expiresAt ?? '',
  };
}

export async function logout(csrfToken: string): Promise<void> {
  const res = await globalThis.fetch(new Request(new URL('/auth/logout', window.location.origin), {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'X-CSRF-Token': csrfToken },
  }));
  if (!res.ok && res.status !== 401) throw errorFromBody(res.status, undefined);
}

export function hasRole(me: Me, role: Role): boolean {
  return me.roles.includes(role);
}
