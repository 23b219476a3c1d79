import { describe, expect, it } from 'vitest';
import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ada, fail403, fail500, json, never, renderApp, stubFetch, usd } from './helpers';
import { expectError, expectForbidden, expectLoading, expectOneH1 } from './states';

const path = 'GET /v1/orgs/acme/members/me/notification-settings';

describe('Settings → Notifications page', () => {
  it('shows loading', async () => {
    stubFetch({ [path]: never });
    renderApp('/settings/notifications');
    await expectOneH1('Settings');
    await expectLoading('Loading notification settings…');
  });
  it('shows errors', async () => {
    stubFetch({ [path]: fail500 });
    renderApp('/settings/notifications');
    await expectError();
  });
  it('says forbidden on 403', async () => {
    stubFetch({ [path]: fail403 });
    renderApp('/settings/notifications');
    await expectForbidden();
  });
  it('starts from empty settings (defaults) with everything off', async () => {
    stubFetch({ [path]: () => json({ settings: {} }) });
    renderApp('/settings/notifications');
    expect(await screen.findByRole('switch', { name: 'Low Credit Alert' })).not.toBeChecked();
    expect(screen.getByLabelText(/Set the credit limit to receive notifications/)).toHaveValue('');
  });
  it('requires a limit to enable the Low Credit Alert', async () => {
    stubFetch({ [path]: () => json({ settings: {} }) });
    renderApp('/settings/notifications');
    await userEvent.click(await screen.findByRole('switch', { name: 'Low Credit Alert' }));
    await userEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('Enter the credit limit to enable the alert.')).toBeInTheDocument();
  });
  it('saves the Low Credit Alert with its threshold and the other emails', async () => {
    const calls = stubFetch({
      [path]: () =>
        json({
          settings: {
            lowCreditAlertEnabled: false,
            effectiveEmail: 'ada@acme.test',
            creditsExpiringEnabled: true,
            creditsExpiredEnabled: true,
            paymentSucceededEnabled: true,
            rentalSuspendedEnabled: true,
            lastKnownBalance: usd('42', 500000000),
          },
        }),
      'PUT /v1/orgs/acme/members/me/notification-settings': async (req) => json({ settings: await req.json() }),
    });
    renderApp('/settings/notifications');
    await userEvent.click(await screen.findByRole('switch', { name: 'Low Credit Alert' }));
    await userEvent.type(screen.getByLabelText(/Set the credit limit to receive notifications/), '10.50');
    await userEvent.click(screen.getByRole('switch', { name: 'Payment received' }));
    await userEvent.click(screen.getByRole('button', { name: 'Save' }));
    expect(await screen.findByText('Notification settings saved.')).toBeInTheDocument();
    expect(calls.bodies.at(-1)).toEqual({
      lowCreditAlertEnabled: true,
      lowCreditThreshold: usd('10', 500000000),
      email: '',
      creditsExpiringEnabled: true,
      creditsExpiredEnabled: true,
      paymentSucceededEnabled: false,
      rentalSuspendedEnabled: true,
    });
    expect(calls.requests.find((r) => r.method === 'PUT')!.headers.get('X-CSRF-Token')).toBe(ada.csrfToken);
  });
});
