import { describe, expect, it, vi } from 'vitest';
import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ada, json, renderApp, stubFetch, usd } from './helpers';
import { nav } from '../src/nav';

const quiet = {
  'GET /v1/orgs/acme/usage-summary': () => json({ days: [], totals: [] }),
  'GET /v1/orgs/acme/transactions': () => json({}),
};

describe('Header', () => {
  it('sends a visitor without a session to the sign-in page with the path to return to', async () => {
    const assign = vi.spyOn(nav, 'assign').mockImplementation(() => undefined);
    stubFetch({ 'GET /auth/me': () => json({ code: 'unauthenticated', message: 'sign in' }, 401) });
    renderApp('/billing?checkout=success');
    // MemoryRouter does not move window.location; the login URL is built from it.
    await waitFor(() => expect(assign).toHaveBeenCalledWith(`/auth/login?return_to=${encodeURIComponent('/')}`));
  });

  it('reads the notification settings on every page, so the notifications service knows each member and admin early', async () => {
    const calls = stubFetch(quiet);
    renderApp('/usage');
    await screen.findByRole('button', { name: /^Balance/ });
    await waitFor(() =>
      expect(calls.requests.some((r) => new URL(r.url).pathname === '/v1/orgs/acme/members/me/notification-settings')).toBe(true),
    );
  });

  it('shows the organization, the member and the balance with its expiry in a menu button', async () => {
    stubFetch(quiet);
    renderApp('/usage');
    const balance = await screen.findByRole('button', { name: 'Balance $42.50 expires Mar 1, 2027' });
    expect(balance).toHaveAttribute('aria-haspopup', 'menu');
    expect(screen.getByText('acme')).toBeInTheDocument();
    expect(screen.getByText('Ada Lovelace')).toBeInTheDocument();
    expect(screen.getByRole('banner')).toBeInTheDocument();
    expect(screen.getByRole('navigation', { name: 'Main' })).toBeInTheDocument();
    expect(screen.getByRole('main')).toBeInTheDocument();
    await userEvent.click(balance);
    expect(await screen.findByRole('menuitem', { name: 'Add Credits' })).toBeInTheDocument();
    expect(screen.getByRole('menuitem', { name: 'Billing' })).toBeInTheDocument();
    expect(screen.getByRole('menuitem', { name: 'Pricing' })).toBeInTheDocument();
  });

  it('shows a Low balance badge under the Low Credit Alert threshold', async () => {
    stubFetch({
      ...quiet,
      'GET /v1/orgs/acme/members/me/notification-settings': () =>
        json({ settings: { lowCreditAlertEnabled: true, lowCreditThreshold: usd('50') } }),
    });
    renderApp('/usage');
    expect(await screen.findByText('Low balance')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Balance $42.50 expires Mar 1, 2027 Low balance' })).toBeInTheDocument();
  });

  it('opens Settings from the profile menu and signs out', async () => {
    const assign = vi.spyOn(nav, 'assign').mockImplementation(() => undefined);
    const calls = stubFetch({
      ...quiet,
      'GET /v1/orgs/acme/members/me/notification-settings': () => json({ settings: {} }),
      'POST /auth/logout': () => new Response(null, { status: 204 }),
    });
    renderApp('/usage');
    await userEvent.click(await screen.findByRole('button', { name: 'Profile: Ada Lovelace' }));
    await userEvent.click(await screen.findByRole('menuitem', { name: 'Settings' }));
    expect(await screen.findByRole('heading', { level: 2, name: 'Notifications' })).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Profile: Ada Lovelace' }));
    await userEvent.click(await screen.findByRole('menuitem', { name: 'Sign out' }));
    await waitFor(() => expect(assign).toHaveBeenCalled());
    expect(calls.requests.find((r) => r.method === 'POST')!.headers.get('X-CSRF-Token')).toBe(ada.csrfToken);
  });
});

describe('Keyboard', () => {
  it('opens the balance menu and Add Credits with the keyboard only', async () => {
    stubFetch({
      ...quiet,
      'GET /v1/orgs/acme/checkout-options': () =>
        json({ minAmount: usd('5'), maxAmount: usd('100'), presets: [], currencyCode: 'USD', validityMonths: 3 }),
    });
    renderApp('/usage');
    const balance = await screen.findByRole('button', { name: /^Balance \$42.50/ });
    await userEvent.tab(); // skip link
    await userEvent.tab();
    expect(balance).toHaveFocus();
    await userEvent.keyboard('{Enter}');
    const item = await screen.findByRole('menuitem', { name: 'Add Credits' });
    await waitFor(() => expect(item).toHaveFocus());
    await userEvent.keyboard('{Enter}');
    expect(await screen.findByRole('dialog', { name: 'Add Credits' })).toBeInTheDocument();
    await waitFor(() => expect(screen.getByLabelText('Amount (USD)')).toBeInTheDocument());
    await userEvent.keyboard('{Escape}');
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    // Focus comes back to the balance, not to the page's body.
    await waitFor(() => expect(balance).toHaveFocus());
  });
});

describe('Session', () => {
  it('shows an error with a retry when the session cannot be read', async () => {
    stubFetch({ 'GET /auth/me': () => json({ code: 14, message: 'gateway unavailable' }, 503) });
    renderApp('/billing');
    expect(await screen.findByText(/Could not load this: gateway unavailable/)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Try again' })).toBeInTheDocument();
    expect(screen.getAllByRole('heading', { level: 1 })).toHaveLength(1);
  });

  it('says a page does not exist', async () => {
    stubFetch(quiet);
    renderApp('/nowhere');
    expect(await screen.findByRole('heading', { level: 1, name: 'Page not found' })).toBeInTheDocument();
  });
});
