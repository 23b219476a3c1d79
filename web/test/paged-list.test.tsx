import { describe, expect, it } from 'vitest';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { QueryClient, QueryClientProvider, useQuery } from '@tanstack/react-query';
import { usePageTokens } from '../src/components/Pager';
import { PagedTable } from '../src/components/PagedList';

interface Page {
  rows?: { id: string; n: number }[];
  nextPageToken?: string;
}

// Two pages: "" holds a and b and points to "p2", which holds c.
const pagesOf: Record<string, Page> = {
  '': { rows: [{ id: 'a', n: 1 }, { id: 'b', n: 2 }], nextPageToken: 'p2' },
  p2: { rows: [{ id: 'c', n: 3 }] },
};

function Rows({ answer }: { answer: (token: string) => Page }) {
  const pages = usePageTokens();
  const query = useQuery({ queryKey: ['rows', pages.current], queryFn: () => Promise.resolve(answer(pages.current)) });
  return (
    <PagedTable
      query={query}
      pages={pages}
      label="Rows"
      loading="Loading rows…"
      items={(d) => d.rows}
      empty="No rows."
      columns={[{ label: 'Id' }, { label: 'Count', num: true }]}
      row={(r) => (
        <tr key={r.id}>
          <td>{r.id}</td>
          <td className="num">{r.n}</td>
        </tr>
      )}
    />
  );
}

function renderRows(answer: (token: string) => Page) {
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <Rows answer={answer} />
    </QueryClientProvider>,
  );
}

describe('PagedTable', () => {
  it('shows the loading state, then the rows under their headers, and pages forward and back', async () => {
    renderRows((token) => pagesOf[token]!);
    expect(screen.getByRole('status')).toHaveTextContent('Loading rows…');
    const table = await screen.findByRole('group', { name: 'Rows table' });
    const headers = within(table).getAllByRole('columnheader');
    expect(headers.map((h) => h.textContent)).toEqual(['Id', 'Count']);
    expect(headers[1]).toHaveClass('num');
    expect(within(table).getAllByRole('row')).toHaveLength(3);
    const pager = screen.getByRole('navigation', { name: 'Rows pages' });
    expect(within(pager).getByText('Page 1')).toBeInTheDocument();
    expect(within(pager).getByRole('button', { name: 'Previous page' })).toBeDisabled();

    await userEvent.click(within(pager).getByRole('button', { name: 'Next page' }));
    expect(await screen.findByText('c')).toBeInTheDocument();
    expect(screen.getByText('Page 2')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Next page' })).toBeDisabled();
    await userEvent.click(screen.getByRole('button', { name: 'Previous page' }));
    expect(await screen.findByText('a')).toBeInTheDocument();
  });

  it('shows the empty state and no pager for an empty first page', async () => {
    renderRows(() => ({}));
    expect(await screen.findByText('No rows.')).toBeInTheDocument();
    expect(screen.queryByRole('table')).toBeNull();
    expect(screen.queryByRole('navigation')).toBeNull();
  });

  it('hides the pager when everything fits on one page', async () => {
    renderRows(() => ({ rows: [{ id: 'a', n: 1 }] }));
    expect(await screen.findByText('a')).toBeInTheDocument();
    expect(screen.queryByRole('navigation')).toBeNull();
  });
});
