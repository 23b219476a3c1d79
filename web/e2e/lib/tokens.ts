// Development tokens, minted by bin/tally-token (`make token`) with the stack's secret: the
// services accept them as they accept any API client's.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { binDir } from './paths';

export interface Identity {
  sub: string;
  org?: string;
  roles: string;
  email?: string;
  name?: string;
}

/** The development users of tally-dev (pkg/cmd/tally-dev), plus members of another organization. */
export const people = {
  ada: { sub: 'user-ada', org: 'acme', roles: 'member', email: 'ada@acme.test', name: 'Ada Lovelace' },
  grace: { sub: 'user-grace', org: 'acme', roles: 'admin', email: 'grace@acme.test', name: 'Grace Hopper' },
  ops: { sub: 'ops-dev', roles: 'ops', email: 'ops@tally.test', name: 'Ops' },
  /** The model backend: a service identity that records usage (Debit). */
  backend: { sub: 'backend-dev', roles: 'service' },
  /** A member of another organization. */
  wile: { sub: 'user-wile', org: 'globex', roles: 'member', email: 'wile@globex.test', name: 'Wile E. Coyote' },
} satisfies Record<string, Identity>;

export function mintToken(id: Identity): string {
  const args = ['-sub', id.sub, '-role', id.roles, '-ttl', '1h'];
  if (id.org) args.push('-org', id.org);
  if (id.email) args.push('-email', id.email);
  if (id.name) args.push('-name', id.name);
  // stderr carries the "development secret" warning; the token is stdout's one line.
  return execFileSync(path.join(binDir, 'tally-token'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}
