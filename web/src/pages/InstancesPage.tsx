import { useMe } from '../auth/session';
import { useInstancePricesQuery } from '../data/instance-prices-query';
import { useRentalsQuery } from '../data/rentals-query';
import type { InstancePrice, Rental } from '../api/types';
import { formatMoney } from '../money';
import { formatDateTime } from '../dates';
import { labels } from '../components/labels';
import { EmptyState, QueryView } from '../components/states';
import { Pager, usePageTokens } from '../components/Pager';
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
            <div className="table-wrap" role="group" aria-label="Instance types table" tabIndex={0}>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Instance type</th>
                    <th scope="col">Hardware</th>
                    <th scope="col" className="num">
                      Price per hour
                    </th>
                    <th scope="col">Availability</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((i) => (
                    <tr key={i.instanceTypeId}>
                      <th scope="row">
                        {i.instanceTypeId}
                        {i.description && <div className="muted small">{i.description}</div>}
                      </th>
                      <td>{hardware(i)}</td>
                      <td className="num">{formatMoney(i.hourlyPrice)}</td>
                      <td>{i.available ? 'Available' : 'Not available'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          );
        }}
      </QueryView>
    </section>
  );
}

function Rentals({ org }: { org: string }) {
  const pages = usePageTokens();
  const query = useRentalsQuery(org, pages.current);
  return (
    <section aria-labelledby="rentals-h">
      <h2 id="rentals-h">Your rentals</h2>
      <QueryView query={query} label="Loading rentals…">
        {(data) =>
          (data.rentals ?? []).length === 0 ? (
            <EmptyState>Your organization has not rented an instance yet.</EmptyState>
          ) : (
            <>
              <div className="table-wrap" role="group" aria-label="Rentals table" tabIndex={0}>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Instance</th>
                      <th scope="col">Type</th>
                      <th scope="col" className="num">
                        Hourly price (locked)
                      </th>
                      <th scope="col">Started</th>
                      <th scope="col" className="num">
                        Periods charged
                      </th>
                      <th scope="col" className="num">
                        Total
                      </th>
                      <th scope="col">State</th>
                    </tr>
                  </thead>
                  <tbody>
                    {(data.rentals ?? []).map((r) => (
                      <RentalRow key={r.instanceId} rental={r} />
                    ))}
                  </tbody>
                </table>
              </div>
              <Pager
                label="Rentals"
                page={pages.page}
                nextToken={data.nextPageToken}
                onNext={pages.next}
                onPrev={pages.prev}
                busy={query.isFetching}
              />
            </>
          )
        }
      </QueryView>
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
