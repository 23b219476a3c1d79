import { describe, expect, it } from 'vitest';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fail403, fail500, json, never, renderApp, stubFetch, usd } from './helpers';
import { expectError, expectForbidden, expectLoading, expectOneH1 } from './states';

const models = () =>
  json({
    models: [
      {
        modelId: 'llama-3.1-8b-instruct',
        displayName: 'Llama 3.1 8B',
        modality: 'MODALITY_LLM',
        dimensions: [
          { unit: 'input_tokens', price: usd('0', 150000000), per: '1000000' },
          { unit: 'output_tokens', price: usd('0', 600000000), per: '1000000' },
        ],
        versionId: 'v1',
        effectiveFrom: '2026-11-01T00:00:00Z',
      },
    ],
    scheduled: [],
  });
const instances = () => json({ instances: [], scheduled: [] });

describe('Pricing page', () => {
  it('shows loading', async () => {
    stubFetch({ 'GET /v1/pricing/models': never, 'GET /v1/pricing/instances': never });
    renderApp('/pricing');
    await expectOneH1('Pricing');
    await expectLoading('Loading model prices…');
  });
  it('shows the empty states', async () => {
    stubFetch({ 'GET /v1/pricing/models': () => json({}), 'GET /v1/pricing/instances': instances });
    renderApp('/pricing');
    expect(await screen.findByText('No model is priced yet.')).toBeInTheDocument();
    expect(await screen.findByText('No instance type is priced yet.')).toBeInTheDocument();
  });
  it('shows errors', async () => {
    stubFetch({ 'GET /v1/pricing/models': fail500, 'GET /v1/pricing/instances': fail500 });
    renderApp('/pricing');
    await expectError();
  });
  it('says forbidden on 403', async () => {
    stubFetch({ 'GET /v1/pricing/models': fail403, 'GET /v1/pricing/instances': fail403 });
    renderApp('/pricing');
    await expectForbidden();
  });
  it('lists model prices per unit and quotes a usage', async () => {
    const calls = stubFetch({
      'GET /v1/pricing/models': models,
      'GET /v1/pricing/instances': instances,
      'POST /v1/pricing/quote': () =>
        json({
          modelId: 'llama-3.1-8b-instruct',
          total: usd('0', 180),
          lines: [{ unit: 'input_tokens', quantity: '1200', amount: usd('0', 180) }],
        }),
    });
    renderApp('/pricing');
    expect(await within(await screen.findByRole('region', { name: 'Models' })).findByText('$0.15 per 1,000,000 input tokens')).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText('Quantity of input tokens'), '1200');
    await userEvent.click(screen.getByRole('button', { name: 'Get quote' }));
    expect(await screen.findByText('$0.00000018')).toBeInTheDocument();
    expect(calls.bodies.at(-1)).toEqual({ modelId: 'llama-3.1-8b-instruct', usage: { input_tokens: '1200' } });
  });
});
