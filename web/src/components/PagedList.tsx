import type { ReactNode } from 'react';
import type { UseQueryResult } from '@tanstack/react-query';
import { EmptyState, QueryView } from './states';
import { Pager, type PageTokens } from './Pager';

/** What every paged answer of the API carries. */
interface Page {
  nextPageToken?: string;
}

export interface PagedListProps<D extends Page, T> {
  /** The query of the page shown (its key holds pages.current). */
  query: UseQueryResult<D>;
  pages: PageTokens;
  /** Names the list for the pager ("Payments" → navigation "Payments pages"). */
  label: string;
  /** The loading text, e.g. "Loading payments…". */
  loading: string;
  /** The items of a page. */
  items: (data: D) => T[] | undefined;
  /** What an empty first page says. */
  empty: ReactNode;
  /** Renders the items of a page (never empty). */
  children: (items: T[]) => ReactNode;
}

/** One page of a paged list: its loading, error and empty states, its items, and the pager. */
export function PagedList<D extends Page, T>({ query, pages, label, loading, items, empty, children }: PagedListProps<D, T>) {
  return (
    <QueryView query={query} label={loading}>
      {(data) => {
        const list = items(data) ?? [];
        if (list.length === 0) return <EmptyState>{empty}</EmptyState>;
        return (
          <>
            {children(list)}
            <Pager
              label={label}
              page={pages.page}
              nextToken={data.nextPageToken}
              onNext={pages.next}
              onPrev={pages.prev}
              busy={query.isFetching}
            />
          </>
        );
      }}
    </QueryView>
  );
}

/** A column of a Table: its header, right-aligned when it holds numbers. */
export interface Column {
  label: string;
  num?: boolean;
}

export interface TableProps<T> {
  /** The accessible name of the scrollable table, e.g. "Payments table". */
  label: string;
  columns: Column[];
  items: T[];
  /** Renders one item as a keyed row. */
  row: (item: T) => ReactNode;
}

/** A table in its keyboard-scrollable wrapper: one header row, one row per item. */
export function Table<T>({ label, columns, items, row }: TableProps<T>) {
  return (
    <div className="table-wrap" role="group" aria-label={label} tabIndex={0}>
      <table>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.label} scope="col" className={c.num ? 'num' : undefined}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>{items.map((item) => row(item))}</tbody>
      </table>
    </div>
  );
}

export type PagedTableProps<D extends Page, T> = Omit<PagedListProps<D, T>, 'children'> &
  Pick<TableProps<T>, 'columns' | 'row'> & {
    /** The table's accessible name; `${label} table` by default. */
    tableLabel?: string;
  };

/** A PagedList shown as a Table. */
export function PagedTable<D extends Page, T>({ columns, row, tableLabel, ...list }: PagedTableProps<D, T>) {
  return (
    <PagedList {...list}>
      {(items) => <Table label={tableLabel ?? `${list.label} table`} columns={columns} items={items} row={row} />}
    </PagedList>
  );
}
