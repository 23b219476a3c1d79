import { lazy, Suspense, useMemo, useState } from 'react';
import * as ToggleGroup from '@radix-ui/react-toggle-group';
import { useMe } from '../auth/session';
import { useUsageSummaryQuery } from '../data/usage-summary-query';
import { useTransactionsQuery, type TransactionKindFilter } from '../data/transactions-query';
import { formatMoney } from '../money';
import { formatDateTime, formatDay, formatIsoDay } from '../dates';
import { labels } from '../components/labels';
import { EmptyState, LoadingState, QueryView } from '../components/states';
import { usePageTokens } from '../components/Pager';
import { PagedTable } from '../components/PagedList';
import { FilterSelect, type FilterOption } from '../components/FilterSelect';
import { NoOrganization } from './NoOrganization';
import { seriesIds, usageCsv, usageRows, type UsageKind, type UsageSummary } from './usage-data';

const UsageChart = lazy(() => import('./UsageChart'));

export function UsagePage() {
  const me = useMe();
  if (me.orgId === '') return <NoOrganization title="Usage" />;
  return (
    <>
      <h1>Usage</h1>
      <UsageSummarySection org={me.orgId} />
      <TransactionsSection org={me.orgId} />
    </>
  );
}

function downloadCsv(summary: UsageSummary) {
  const blob = new Blob([usageCsv(summary)], { type: 'text/csv;charset=utf-8' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = `usage-${summary.orgId ?? 'org'}-${formatDay(summary.to).replace(/[ ,]+/g, '-')}.csv`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

function UsageSummarySection({ org }: { org: string }) {
  const query = useUsageSummaryQuery(org, 30);
  const [kind, setKind] = useState<UsageKind>('model');
  return (
    <section aria-labelledby="usage-h">
      <div className="section-head">
        <h2 id="usage-h">Credits consumed, last 30 days</h2>
        {query.data && (
          <button type="button" className="btn" onClick={() => downloadCsv(query.data)}>
            Export CSV
          </button>
        )}
      </div>
      <QueryView query={query} label="Loading usage…">
        {(summary) => <UsageBody summary={summary} kind={kind} setKind={setKind} />}
      </QueryView>
    </section>
  );
}

function UsageBody({
  summary,
  kind,
  setKind,
}: {
  summary: UsageSummary;
  kind: UsageKind;
  setKind: (k: UsageKind) => void;
}) {
  const ids = useMemo(() => seriesIds(summary, kind), [summary, kind]);
  const rows = useMemo(() => usageRows(summary, kind), [summary, kind]);
  const currency = summary.currencyCode || 'USD';
  const hasAny = (summary.totals ?? []).length > 0;
  return (
    <>
      <ToggleGroup.Root
        type="single"
        className="toggle"
        value={kind}
        onValueChange={(v) => v && setKind(v as UsageKind)}
        aria-label="Group usage"
      >
        <ToggleGroup.Item value="model" className="toggle-item">
          By model
        </ToggleGroup.Item>
        <ToggleGroup.Item value="instance" className="toggle-item">
          By instance
        </ToggleGroup.Item>
      </ToggleGroup.Root>
      {!hasAny ? (
        <EmptyState>No credits were consumed in the last 30 days.</EmptyState>
      ) : ids.length === 0 ? (
        <EmptyState>{kind === 'model' ? 'No model usage in the last 30 days.' : 'No instance usage in the last 30 days.'}</EmptyState>
      ) : (
        <>
          <Suspense fallback={<LoadingState label="Loading chart…" />}>
            <UsageChart rows={rows} ids={ids} currency={currency} />
          </Suspense>
          <div className="table-wrap" role="region" aria-label="Usage per day" tabIndex={0}>
            <table>
              <caption>
                Credits consumed per day {kind === 'model' ? 'by model' : 'by instance'} ({summary.from ? formatIsoDay(String(summary.from).slice(0, 10)) : ''}–
                {summary.to ? formatIsoDay(String(summary.to).slice(0, 10)) : ''})
              </caption>
              <thead>
                <tr>
                  <th scope="col">Day</th>
                  {ids.map((id) => (
                    <th scope="col" key={id} className="num">
                      {id}
                    </th>
                  ))}
                  <th scope="col" className="num">
                    {kind === 'model' ? 'Total of models' : 'Total of instances'}
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.day}>
                    <th scope="row">{formatIsoDay(r.day)}</th>
                    {ids.map((id) => (
                      <td key={id} className="num">
                        {r.amounts[id] ? formatMoney(r.amounts[id]) : '—'}
                      </td>
                    ))}
                    <td className="num">{formatMoney(r.total)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </>
  );
}

const KINDS: FilterOption<TransactionKindFilter>[] = [
  { value: '', label: 'All' },
  { value: 'TRANSACTION_KIND_CREDIT', label: 'Credits' },
  { value: 'TRANSACTION_KIND_DEBIT', label: 'Debits' },
  { value: 'TRANSACTION_KIND_CAPTURE', label: 'Captures' },
  { value: 'TRANSACTION_KIND_ADJUSTMENT', label: 'Adjustments and refunds' },
  { value: 'TRANSACTION_KIND_EXPIRY', label: 'Expiry' },
];

const TRANSACTION_COLUMNS = [
  { label: 'Date' },
  { label: 'Type' },
  { label: 'Description' },
  { label: 'Amount', num: true },
  { label: 'Balance after', num: true },
];

function TransactionsSection({ org }: { org: string }) {
  const pages = usePageTokens();
  const [kind, setKind] = useState<TransactionKindFilter>('');
  const query = useTransactionsQuery(org, pages.current, kind);
  return (
    <section aria-labelledby="tx-h">
      <h2 id="tx-h">Transaction history</h2>
      <FilterSelect
        label="Show"
        value={kind}
        options={KINDS}
        onChange={(v) => {
          pages.reset();
          setKind(v);
        }}
      />
      <PagedTable
        query={query}
        pages={pages}
        label="Transactions"
        loading="Loading transactions…"
        items={(data) => data.transactions}
        empty="No transactions yet."
        columns={TRANSACTION_COLUMNS}
        row={(t) => (
          <tr key={t.id}>
            <td>{formatDateTime(t.createdAt)}</td>
            <td>{labels.txKind(t.kind)}</td>
            <td>{t.description || t.reason || t.pricedUsage?.modelId || t.reference || '—'}</td>
            <td className="num">{formatMoney(t.amount, { signed: true })}</td>
            <td className="num">{formatMoney(t.balanceAfter)}</td>
          </tr>
        )}
      />
    </section>
  );
}
