// OpenID Connect sign-in in the browser: authorization code with PKCE against a real provider
// (tally-oidc-dev), through the gateway's /auth/login and /auth/callback, ending in the
// HttpOnly session cookie. The services verifying the provider's tokens through its JWKS, and
// renewal, are covered by the gateway's Go tests (services/gateway/gateway/signin_test.go).
import { expect, test } from '@playwright/test';
import { chromium } from '@playwright/test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromiumArgs, chromiumPath } from '../lib/browser';
import { startOIDCGateway, type OIDCGateway } from '../lib/oidc';
import { shot } from '../lib/shots';
import { stack } from '../lib/stack';

let gw: OIDCGateway | undefined;

test.afterAll(async () => {
  await gw?.stop();
});

test('21 OIDC sign-in: authorization code with PKCE at the provider, then the session cookie', async () => {
  gw = await startOIDCGateway(stack().logsDir);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: chromiumPath, headless: true, args: chromiumArgs, baseURL: gw.url });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const authorize: URL[] = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (r.url().startsWith(gw!.issuer) && u.searchParams.has('code_challenge')) authorize.push(u);
    });
    // Grace picked by login_hint; she comes back to /auth/me, which says who the session is.
    await page.goto('/auth/login?login_hint=grace&return_to=%2Fauth%2Fme');
    await expect(page).toHaveURL(`${gw.url}/auth/me`);
    expect(authorize, 'the browser went to the provider with a PKCE challenge').toHaveLength(1);
    const a = authorize[0]!;
    expect(a.searchParams.get('response_type')).toBe('code');
    expect(a.searchParams.get('code_challenge_method')).toBe('S256');
    expect(a.searchParams.get('state')).toBeTruthy();
    expect(a.searchParams.get('nonce')).toBeTruthy();
    expect(a.searchParams.get('redirect_uri')).toBe(`${gw.url}/auth/callback`);

    const me = JSON.parse((await page.locator('body').textContent()) ?? '{}') as { name: string; orgId: string; roles: string[]; csrfToken: string };
    expect(me).toMatchObject({ name: 'Grace Hopper', orgId: 'acme', roles: ['admin'] });
    expect(me.csrfToken).toBeTruthy();
    const cookie = (await context.cookies()).find((k) => k.name === 'tally_session');
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.secure).toBe(true);
    expect(cookie?.sameSite).toBe('Lax');
    // No token reaches the page: not in the cookie's readable jar, not in the answer.
    expect(await page.evaluate(() => document.cookie)).not.toContain('tally_session');
    expect(JSON.stringify(me)).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
    await shot(page, '21-oidc-signed-in');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
});
