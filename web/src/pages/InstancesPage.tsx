import { useMe } from '../auth/session';
import { useInstancePricesQuery } from '../data/instance-prices-query';
import { useRentalsQuery } from '../data/rentals-query';
import type { InstancePrice, Rental } from '../api/types';
import { formatMoney } from '../money';
import { formatDateTime } from '../dates';
import { labels } from '../components/labels';
import { EmptyState, QueryView } from '../components/states';
import { usePageTokens } from '../components/Pager';
import { PagedTable, Table } from '../components/PagedList';
import { useAddCredits } from '../components/AddCreditsDialog';

export function InstancesPage() {
  const me = useMe();
  return (
    <>
      <h1>Instances</h1>
      <InstanceTypes />
      {me.orgId !== '' && <Rentals org={me.orgId} />}
    </>
  );
}

export function hardware(i: InstancePrice): string {
  const parts: string[] = [];
  if (i.gpu) parts.push(`${i.gpuCount && i.gpuCount > 1 ? `${i.gpuCount} × ` : ''}${i.gpu}`);
  if (i.vcpu) parts.push(`${i.vcpu} vCPU`);
  if (i.memoryGib) parts.push(`${i.memoryGib} GiB`);
  return parts.join(' · ') || '—';
}

function InstanceTypes() {
  const query = useInstancePricesQuery();
  return (
    <section aria-labelledby="types-h">
      <h2 id="types-h">Instance types available now</h2>
      <p className="muted">The hourly price of the moment. A rental keeps the price in force when it starts.</p>
      <QueryView query={query} label="Loading instance types…">
        {(data) => {
          const list = data.instances ?? [];
          if (list.length === 0) return <EmptyState>No instance types are offered at the moment.</EmptyState>;
          return (
            <Table
              label="Instance types table"
              columns={[{ label: 'Instance type' }, { label: 'Hardware' }, { label: 'Price per hour', num: true }, { label: 'Availability' }]}
              items={list}
              row={(i) => (
                <tr key={i.instanceTypeId}>
                  <th scope="row">
                    {i.instanceTypeId}
                    {i.description && <div className="muted small">{i.description}</div>}
                  </th>
                  <td>{hardware(i)}</td>
                  <td className="num">{formatMoney(i.hourlyPrice)}</td>
                  <td>{i.available ? 'Available' : 'Not available'}</td>
                </tr>
              )}
            />
          );
        }}
      </QueryView>
    </section>
  );
}

const RENTAL_COLUMNS = [
  { label: 'Instance' },
  { label: 'Type' },
  { label: 'Hourly price (locked)', num: true },
  { label: 'Started' },
  { label: 'Periods charged', num: true },
  { label: 'Total', num: true },
  { label: 'State' },
];

function Rentals({ org }: { org: string }) {
  const pages = usePageTokens();
  const query = useRentalsQuery(org, pages.current);
  return (
    <section aria-labelledby="rentals-h">
      <h2 id="rentals-h">Your rentals</h2>
      <PagedTable
        query={query}
        pages={pages}
        label="Rentals"
        loading="Loading rentals…"
        items={(data) => data.rentals}
        empty="Your organization has not rented an instance yet."
        columns={RENTAL_COLUMNS}
        row={(r) => <RentalRow key={r.instanceId} rental={r} />}
      />
    </section>
  );
}

function RentalRow({ rental: r }: { rental: Rental }) {
  const addCredits = useAddCredits();
  const suspended = r.state === 'RENTAL_STATE_SUSPENDED_INSUFFICIENT_CREDITS';
  return (
    <tr>
      <th scope="row">{r.instanceId}</th>
      <td>{r.instanceType}</td>
      <td className="num">{formatMoney(r.hourlyPrice)}</td>
      <td>{formatDateTime(r.startedAt)}</td>
      <td className="num">{String(r.periodsCharged ?? '0')}</td>
      <td className="num">{formatMoney(r.totalCharged)}</td>
      <td>
        <span className={`status status-${suspended ? 'failed' : (r.state ?? '').toLowerCase()}`}>
          {labels.rentalState(r.state)}
        </span>
        {suspended && (
          <div className="small">
            Suspended {formatDateTime(r.suspendedAt)}: the organization's credits could not pay the next period
            {r.periodPrice ? ` (${formatMoney(r.periodPrice)})` : ''}.{' '}
            <button type="button" className="btn-link" onClick={() => addCredits.open()}>
              Add Credits
            </button>
          </div>
        )}
        {r.state === 'RENTAL_STATE_STOPPED' && r.stoppedAt && <div className="small muted">{formatDateTime(r.stoppedAt)}</div>}
      </td>
    </tr>
  );
}
