import { describe, expect, it } from 'vitest';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fail500, grace, json, never, renderApp, stubFetch, usd } from './helpers';
import { expectError, expectLoading } from './states';

const path = 'GET /v1/orgs/acme/spend-limit';
const limited = {
  spendLimit: {
    orgId: 'acme',
    limit: usd('100'),
    alertPercent: 80,
    month: '2026-12',
    monthSpend: usd('85', 500000000),
    remaining: usd('14', 500000000),
    reached: false,
    alerted: true,
  },
};

async function limitsSection() {
  return within((await screen.findByRole('heading', { level: 2, name: 'Limits' })).closest('section')!);
}

describe('Settings → Limits', () => {
  it('shows loading', async () => {
    stubFetch({ [path]: never });
    renderApp('/settings/notifications');
    await expectLoading('Loading spend limit…');
  });
  it('shows errors', async () => {
    stubFetch({ [path]: fail500 });
    renderApp('/settings/notifications');
    await expectError();
  });
  it("shows a member this month's spend against the limit, read-only", async () => {
    stubFetch({ [path]: () => json(limited) });
    renderApp('/settings/notifications');
    const s = await limitsSection();
    expect(await s.findByTestId('month-spend')).toHaveTextContent('$85.50');
    expect(s.getByTestId('spend-limit')).toHaveTextContent('$100.00');
    expect(s.getByText('Spent in December 2026 (UTC)')).toBeInTheDocument();
    expect(s.getByText('At 80% of the limit (sent this month)')).toBeInTheDocument();
    expect(s.getByRole('meter', { name: 'Spent of the monthly limit' })).toHaveAttribute('value', '85.5');
    expect(s.getByText('Only admins of your organization can change the spend limit.')).toBeInTheDocument();
    expect(s.queryByRole('button', { name: 'Save limit' })).toBeNull();
  });
  it('says when the limit is reached', async () => {
    stubFetch({
      [path]: () => json({ spendLimit: { ...limited.spendLimit, monthSpend: usd('100'), remaining: usd('0'), reached: true } }),
    });
    renderApp('/settings/notifications');
    const s = await limitsSection();
    expect(await s.findByRole('alert')).toHaveTextContent(
      'The monthly spend limit is reached: calls are refused until January 1 or a higher limit.',
    );
  });
  it('shows no limit', async () => {
    stubFetch({});
    renderApp('/settings/notifications');
    const s = await limitsSection();
    expect(await s.findByTestId('spend-limit')).toHaveTextContent('No limit');
    expect(s.queryByRole('meter')).toBeNull();
  });
  it('lets an admin set the limit and the alert percentage', async () => {
    const calls = stubFetch(
      {
        [path]: () => json({ spendLimit: { orgId: 'acme', month: '2026-12', monthSpend: usd('12') } }),
        'PUT /v1/orgs/acme/spend-limit': async (req) => {
          const body = (await req.json()) as { limit: unknown; alertPercent: number };
          return json({
            spendLimit: { orgId: 'acme', month: '2026-12', monthSpend: usd('12'), limit: body.limit, alertPercent: body.alertPercent, remaining: usd('238') },
          });
        },
      },
      grace,
    );
    renderApp('/settings/notifications');
    const s = await limitsSection();
    await userEvent.type(await s.findByLabelText('Monthly spend limit (USD)'), '250');
    await userEvent.type(s.getByLabelText('Alert email at (% of the limit)'), '80');
    await userEvent.click(s.getByRole('button', { name: 'Save limit' }));
    expect(await s.findByText('Spend limit saved.')).toBeInTheDocument();
    expect(calls.bodies.at(-1)).toEqual({ limit: usd('250'), alertPercent: 80 });
    expect(calls.requests.find((r) => r.method === 'PUT')!.headers.get('X-CSRF-Token')).toBe(grace.csrfToken);
    expect(s.getByTestId('spend-limit')).toHaveTextContent('$250.00');
  });
  it('validates the form before saving', async () => {
    const calls = stubFetch({}, grace);
    renderApp('/settings/notifications');
    const s = await limitsSection();
    await userEvent.type(await s.findByLabelText('Alert email at (% of the limit)'), '80');
    await userEvent.click(s.getByRole('button', { name: 'Save limit' }));
    expect(await s.findByText('Set a limit to get an alert.')).toBeInTheDocument();
    await userEvent.type(s.getByLabelText('Monthly spend limit (USD)'), '1.234');
    await userEvent.clear(s.getByLabelText('Alert email at (% of the limit)'));
    await userEvent.type(s.getByLabelText('Alert email at (% of the limit)'), '150');
    await userEvent.click(s.getByRole('button', { name: 'Save limit' }));
    expect(await s.findByText('Use at most 2 decimal places.')).toBeInTheDocument();
    expect(s.getByText('Enter a whole percentage from 1 to 100.')).toBeInTheDocument();
    expect(calls.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);
  });
  it('removes the limit when the field is emptied', async () => {
    const calls = stubFetch(
      {
        [path]: () => json(limited),
        'PUT /v1/orgs/acme/spend-limit': () => json({ spendLimit: { orgId: 'acme', month: '2026-12', monthSpend: usd('85', 500000000) } }),
      },
      grace,
    );
    renderApp('/settings/notifications');
    const s = await limitsSection();
    await userEvent.clear(await s.findByLabelText('Monthly spend limit (USD)'));
    await userEvent.clear(s.getByLabelText('Alert email at (% of the limit)'));
    await userEvent.click(s.getByRole('button', { name: 'Save limit' }));
    expect(await s.findByText('Spend limit saved.')).toBeInTheDocument();
    expect(calls.bodies.at(-1)).toEqual({ limit: usd('0'), alertPercent: 0 });
  });
});

describe('Settings → Limits → Per-project limits', () => {
  const projects = {
    month: '2026-12',
    projectLimits: [
      { project: 'chatbot', limit: usd('50'), monthSpend: usd('50'), remaining: usd('0'), reached: true },
      { project: 'search', limit: usd('20'), monthSpend: usd('5'), remaining: usd('15'), reached: false },
    ],
  };
  it('shows a member each project against its limit, read-only', async () => {
    stubFetch({ 'GET /v1/orgs/acme/project-limits': () => json(projects) });
    renderApp('/settings/notifications');
    const s = await limitsSection();
    const table = await s.findByRole('table', { name: 'Project limits' });
    const chatbot = within(table).getByTestId('project-limit-chatbot');
    expect(chatbot).toHaveTextContent('$50.00');
    expect(chatbot).toHaveTextContent('Limit reached');
    expect(within(table).getByTestId('project-limit-search')).toHaveTextContent('$15.00');
    expect(s.getByText('Only admins of your organization can change project limits.')).toBeInTheDocument();
    expect(s.queryByRole('button', { name: /Remove/ })).toBeNull();
  });
  it('shows when no project has a limit', async () => {
    stubFetch({});
    renderApp('/settings/notifications');
    const s = await limitsSection();
    expect(await s.findByTestId('no-project-limits')).toHaveTextContent('No project has a limit.');
  });
  it('lets an admin set and remove a project limit', async () => {
    let rows = [...projects.projectLimits];
    const calls = stubFetch(
      {
        'GET /v1/orgs/acme/project-limits': () => json({ month: '2026-12', projectLimits: rows }),
        'PUT /v1/orgs/acme/project-limits/batch-jobs': async (req) => {
          const body = (await req.json()) as { limit: { units: string; nanos: number; currencyCode: string } };
          const row = { project: 'batch-jobs', limit: body.limit, monthSpend: usd('0'), remaining: body.limit, reached: false };
          rows = [...rows, row];
          return json({ projectLimit: row });
        },
        'PUT /v1/orgs/acme/project-limits/search': () => {
          rows = rows.filter((r) => r.project !== 'search');
          return json({ projectLimit: { project: 'search', limit: usd('0') } });
        },
      },
      grace,
    );
    renderApp('/settings/notifications');
    const s = await limitsSection();
    await userEvent.type(await s.findByLabelText('Project'), 'batch-jobs');
    await userEvent.type(s.getByLabelText('Project monthly limit (USD)'), '12.50');
    await userEvent.click(s.getByRole('button', { name: 'Save project limit' }));
    expect(await s.findByText('Limit of batch-jobs saved.')).toBeInTheDocument();
    expect(calls.bodies.at(-1)).toEqual({ limit: usd('12', 500000000) });
    expect(await s.findByTestId('project-limit-batch-jobs')).toHaveTextContent('$12.50');

    await userEvent.click(s.getByRole('button', { name: 'Remove the limit of search' }));
    await within(s.getByRole('table', { name: 'Project limits' })).findByTestId('project-limit-batch-jobs');
    expect(calls.bodies.at(-1)).toEqual({ limit: usd('0') });
    await expect.poll(() => s.queryByTestId('project-limit-search')).toBeNull();
  });
  it('validates the project form before saving', async () => {
    const calls = stubFetch({}, grace);
    renderApp('/settings/notifications');
    const s = await limitsSection();
    await userEvent.click(await s.findByRole('button', { name: 'Save project limit' }));
    expect(await s.findByText('Enter the project tag.')).toBeInTheDocument();
    expect(s.getByText('Enter a monthly limit.')).toBeInTheDocument();
    await userEvent.type(s.getByLabelText('Project'), 'x');
    await userEvent.type(s.getByLabelText('Project monthly limit (USD)'), '0');
    await userEvent.click(s.getByRole('button', { name: 'Save project limit' }));
    expect(await s.findByText('Enter a limit above zero (remove a limit with its Remove button).')).toBeInTheDocument();
    expect(calls.requests.filter((r) => r.method === 'PUT')).toHaveLength(0);
  });
});
