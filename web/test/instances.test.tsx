import { describe, expect, it } from 'vitest';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fail403, fail500, json, never, renderApp, stubFetch, usd } from './helpers';
import { expectError, expectForbidden, expectLoading, expectOneH1 } from './states';

const types = () =>
  json({
    instances: [
      { instanceTypeId: 'gpu-a100', description: 'A100 box', gpu: 'NVIDIA A100 80GB', gpuCount: 1, vcpu: 12, memoryGib: 85, hourlyPrice: usd('2', 500000000), available: true },
    ],
  });

describe('Instances page', () => {
  it('shows loading', async () => {
    stubFetch({ 'GET /v1/pricing/instances': never, 'GET /v1/orgs/acme/rentals': never });
    renderApp('/instances');
    await expectOneH1('Instances');
    await expectLoading('Loading instance types…');
    await expectLoading('Loading rentals…');
  });

  it('shows the empty states', async () => {
    stubFetch({ 'GET /v1/pricing/instances': () => json({ instances: [] }), 'GET /v1/orgs/acme/rentals': () => json({}) });
    renderApp('/instances');
    expect(await screen.findByText('No instance types are offered at the moment.')).toBeInTheDocument();
    expect(await screen.findByText('Your organization has not rented an instance yet.')).toBeInTheDocument();
  });

  it('shows errors', async () => {
    stubFetch({ 'GET /v1/pricing/instances': fail500, 'GET /v1/orgs/acme/rentals': fail500 });
    renderApp('/instances');
    await expectError();
  });

  it('says forbidden on 403', async () => {
    stubFetch({ 'GET /v1/pricing/instances': types, 'GET /v1/orgs/acme/rentals': fail403 });
    renderApp('/instances');
    await expectForbidden();
  });

  it('lists the types with their hourly price and the rentals; a suspended one links to Add Credits', async () => {
    stubFetch({
      'GET /v1/pricing/instances': types,
      'GET /v1/orgs/acme/rentals': () =>
        json({
          rentals: [
            {
              instanceId: 'i-1',
              orgId: 'acme',
              instanceType: 'gpu-a100',
              hourlyPrice: usd('2', 500000000),
              periodPrice: usd('2', 500000000),
              state: 'RENTAL_STATE_SUSPENDED_INSUFFICIENT_CREDITS',
              startedAt: '2026-11-30T08:00:00Z',
              suspendedAt: '2026-11-30T11:00:00Z',
              periodsCharged: '3',
              totalCharged: usd('7', 500000000),
            },
          ],
        }),
      'GET /v1/orgs/acme/checkout-options': never,
    });
    renderApp('/instances');
    const typesRegion = await screen.findByRole('region', { name: 'Instance types available now' });
    expect(await within(typesRegion).findByText('$2.50')).toBeInTheDocument();
    const rentals = await screen.findByRole('region', { name: 'Your rentals' });
    expect(await within(rentals).findByText('Suspended')).toBeInTheDocument();
    expect(within(rentals).getByText('$7.50')).toBeInTheDocument();
    expect(within(rentals).getByText('3')).toBeInTheDocument();
    await userEvent.click(within(rentals).getByRole('button', { name: 'Add Credits' }));
    expect(await screen.findByRole('dialog', { name: 'Add Credits' })).toBeInTheDocument();
  });
});
