import { useId, useState, type FormEvent } from 'react';
import * as Tabs from '@radix-ui/react-tabs';
import { useMe } from '../auth/session';
import { hasRole } from '../auth/me';
import { useReviewItemsQuery } from '../data/review-items-query';
import { useReviewItemResolveMutation } from '../data/review-item-resolve-mutation';
import { useDeliveriesQuery } from '../data/deliveries-query';
import { useModelPricesQuery } from '../data/model-prices-query';
import { useInstancePricesQuery } from '../data/instance-prices-query';
import { useGrantMutation } from '../data/grant-mutation';
import { useAdjustmentMutation } from '../data/adjustment-mutation';
import { useRefundMutation } from '../data/refund-mutation';
import type { ReviewItem } from '../api/types';
import { formatMoney, parseMoney } from '../money';
import { formatDateTime, formatDay } from '../dates';
import { labels } from '../components/labels';
import { EmptyState, ErrorState, ForbiddenState, QueryView } from '../components/states';
import { Pager, usePageTokens } from '../components/Pager';
import { useIdempotencyKey } from '../idempotency';
import { dimensionText } from './PricingPage';

export function OpsPage() {
  const me = useMe();
  if (!hasRole(me, 'ops')) {
    return (
      <>
        <h1>Ops</h1>
        <ForbiddenState />
      </>
    );
  }
  return (
    <>
      <h1>Ops</h1>
      <Tabs.Root defaultValue="review" className="tabs">
        <Tabs.List aria-label="Ops tools" className="tab-list">
          <Tabs.Trigger value="review" className="tab">
            Review items
          </Tabs.Trigger>
          <Tabs.Trigger value="prices" className="tab">
            Scheduled price changes
          </Tabs.Trigger>
          <Tabs.Trigger value="credits" className="tab">
            Grants and adjustments
          </Tabs.Trigger>
          <Tabs.Trigger value="refunds" className="tab">
            Refunds
          </Tabs.Trigger>
          <Tabs.Trigger value="emails" className="tab">
            Email deliveries
          </Tabs.Trigger>
        </Tabs.List>
        <Tabs.Content value="review" className="tab-panel">
          <ReviewItems />
        </Tabs.Content>
        <Tabs.Content value="prices" className="tab-panel">
          <ScheduledPrices />
        </Tabs.Content>
        <Tabs.Content value="credits" className="tab-panel">
          <GrantForm />
          <AdjustmentForm />
        </Tabs.Content>
        <Tabs.Content value="refunds" className="tab-panel">
          <RefundForm />
        </Tabs.Content>
        <Tabs.Content value="emails" className="tab-panel">
          <Deliveries />
        </Tabs.Content>
      </Tabs.Root>
    </>
  );
}

function ReviewItems() {
  const [includeResolved, setIncludeResolved] = useState(false);
  const pages = usePageTokens();
  const query = useReviewItemsQuery(includeResolved, pages.current);
  const checkId = useId();
  return (
    <section aria-labelledby="review-h">
      <h2 id="review-h">Review items</h2>
      <div className="check">
        <input
          id={checkId}
          type="checkbox"
          checked={includeResolved}
          onChange={(e) => {
            pages.reset();
            setIncludeResolved(e.target.checked);
          }}
        />
        <label htmlFor={checkId}>Include resolved items</label>
      </div>
      <QueryView query={query} label="Loading review items…">
        {(data) =>
          (data.items ?? []).length === 0 ? (
            <EmptyState>Nothing to review.</EmptyState>
          ) : (
            <>
              <ul className="cards">
                {(data.items ?? []).map((item) => (
                  <ReviewItemCard key={item.id} item={item} />
                ))}
              </ul>
              <Pager
                label="Review items"
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

function ReviewItemCard({ item }: { item: ReviewItem }) {
  const resolve = useReviewItemResolveMutation();
  const [resolution, setResolution] = useState('');
  const id = useId();
  const headingId = useId();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (resolution.trim() === '' || !item.id) return;
    resolve.mutate({ id: item.id, resolution: resolution.trim() });
  };
  return (
    <li className="card" aria-labelledby={headingId}>
      <h3 id={headingId}>
        {item.kind} · {item.orgId} · payment {item.paymentId}
      </h3>
      <p>{item.detail}</p>
      <p className="muted small">Opened {formatDateTime(item.createdAt)}</p>
      {item.resolvedAt ? (
        <p>
          Resolved {formatDateTime(item.resolvedAt)} by {item.resolvedBy}: {item.resolution}
        </p>
      ) : (
        <form className="inline-form" onSubmit={submit}>
          <label htmlFor={id}>Resolution</label>
          <input id={id} value={resolution} onChange={(e) => setResolution(e.target.value)} required />
          <button type="submit" className="btn" disabled={resolve.isPending || resolution.trim() === ''}>
            Resolve
          </button>
          {resolve.isError && <ErrorState error={resolve.error} />}
        </form>
      )}
    </li>
  );
}

function ScheduledPrices() {
  const models = useModelPricesQuery();
  const instances = useInstancePricesQuery();
  return (
    <section aria-labelledby="sched-h">
      <h2 id="sched-h">Scheduled price changes</h2>
      <h3>Models</h3>
      <QueryView query={models} label="Loading model prices…">
        {(data) =>
          (data.scheduled ?? []).length === 0 ? (
            <EmptyState>No model price change is scheduled.</EmptyState>
          ) : (
            <ul>
              {(data.scheduled ?? []).map((m) => (
                <li key={m.versionId}>
                  {formatDateTime(m.effectiveFrom)} — {m.displayName || m.modelId} ({m.versionId}):{' '}
                  {(m.dimensions ?? []).map(dimensionText).join('; ')}
                </li>
              ))}
            </ul>
          )
        }
      </QueryView>
      <h3>Instances</h3>
      <QueryView query={instances} label="Loading instance prices…">
        {(data) =>
          (data.scheduled ?? []).length === 0 ? (
            <EmptyState>No instance price change is scheduled.</EmptyState>
          ) : (
            <ul>
              {(data.scheduled ?? []).map((i) => (
                <li key={i.versionId}>
                  {formatDateTime(i.effectiveFrom)} — {i.instanceTypeId} ({i.versionId}): {formatMoney(i.hourlyPrice)} per
                  hour{i.available === false ? ', not available' : ''}
                </li>
              ))}
            </ul>
          )
        }
      </QueryView>
    </section>
  );
}

function Field({
  label,
  value,
  onChange,
  hint,
  inputMode,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  hint?: string;
  inputMode?: 'decimal' | 'text';
}) {
  const id = useId();
  const hintId = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={value}
        inputMode={inputMode}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={hint ? hintId : undefined}
      />
      {hint && (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      )}
    </div>
  );
}

function FormError({ message }: { message: string }) {
  if (message === '') return null;
  return (
    <p className="field-error" role="alert">
      {message}
    </p>
  );
}

function GrantForm() {
  const grant = useGrantMutation();
  const idem = useIdempotencyKey();
  const [org, setOrg] = useState('');
  const [amount, setAmount] = useState('');
  const [currency, setCurrency] = useState('USD');
  const [reason, setReason] = useState('');
  const [error, setError] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseMoney(amount, currency);
    if (org.trim() === '') return setError('Enter the organization.');
    if (!parsed.ok) return setError(parsed.error);
    if (reason.trim() === '') return setError('Enter the reason.');
    setError('');
    const body = { amount: parsed.value, reason: reason.trim(), source: 'CREDIT_SOURCE_GRANT' as const };
    const idempotencyKey = idem.keyFor({ org: org.trim(), ...body });
    grant.mutate({ org: org.trim(), body: { ...body, idempotencyKey } }, { onSuccess: idem.done });
  };
  return (
    <section aria-labelledby="grant-h">
      <h2 id="grant-h">Grant credits</h2>
      <form className="stack form-narrow" onSubmit={submit} noValidate>
        <Field label="Organization" value={org} onChange={setOrg} />
        <Field label="Amount" value={amount} onChange={setAmount} inputMode="decimal" />
        <Field label="Currency" value={currency} onChange={(v) => setCurrency(v.toUpperCase())} />
        <Field label="Reason" value={reason} onChange={setReason} />
        <FormError message={error} />
        {grant.isError && <ErrorState error={grant.error} />}
        {grant.data && (
          <p className="banner banner-success" role="status">
            Granted {formatMoney(grant.data.transaction?.amount)}; balance now {formatMoney(grant.data.balance)}.
          </p>
        )}
        <div className="actions">
          <button type="submit" className="btn btn-primary" disabled={grant.isPending}>
            Grant credits
          </button>
        </div>
      </form>
    </section>
  );
}

function AdjustmentForm() {
  const adjust = useAdjustmentMutation();
  const idem = useIdempotencyKey();
  const [org, setOrg] = useState('');
  const [amount, setAmount] = useState('');
  const [currency, setCurrency] = useState('USD');
  const [reason, setReason] = useState('');
  const [error, setError] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseMoney(amount, currency, { allowNegative: true, maxFractionDigits: 9 });
    if (org.trim() === '') return setError('Enter the organization.');
    if (!parsed.ok) return setError(parsed.error);
    if (reason.trim() === '') return setError('Enter the reason.');
    setError('');
    const body = { amount: parsed.value, reason: reason.trim() };
    const idempotencyKey = idem.keyFor({ org: org.trim(), ...body });
    adjust.mutate({ org: org.trim(), body: { ...body, idempotencyKey } }, { onSuccess: idem.done });
  };
  return (
    <section aria-labelledby="adjust-h">
      <h2 id="adjust-h">Adjust a balance</h2>
      <form className="stack form-narrow" onSubmit={submit} noValidate>
        <Field label="Organization" value={org} onChange={setOrg} />
        <Field
          label="Signed amount"
          value={amount}
          onChange={setAmount}
          inputMode="text"
          hint="Positive adds credits, negative removes them, e.g. -12.50."
        />
        <Field label="Currency" value={currency} onChange={(v) => setCurrency(v.toUpperCase())} />
        <Field label="Reason" value={reason} onChange={setReason} />
        <FormError message={error} />
        {adjust.isError && <ErrorState error={adjust.error} />}
        {adjust.data && (
          <p className="banner banner-success" role="status">
            Adjusted by {formatMoney(adjust.data.transaction?.amount, { signed: true })}; balance now{' '}
            {formatMoney(adjust.data.balance)}.
          </p>
        )}
        <div className="actions">
          <button type="submit" className="btn btn-primary" disabled={adjust.isPending}>
            Adjust balance
          </button>
        </div>
      </form>
    </section>
  );
}

function RefundForm() {
  const refund = useRefundMutation();
  const idem = useIdempotencyKey();
  const [paymentId, setPaymentId] = useState('');
  const [amount, setAmount] = useState('');
  const [currency, setCurrency] = useState('USD');
  const [reason, setReason] = useState('');
  const [error, setError] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (paymentId.trim() === '') return setError('Enter the payment.');
    let money;
    if (amount.trim() !== '') {
      const parsed = parseMoney(amount, currency);
      if (!parsed.ok) return setError(parsed.error);
      money = parsed.value;
    }
    if (reason.trim() === '') return setError('Enter the reason.');
    setError('');
    const body = { reason: reason.trim(), ...(money ? { amount: money } : {}) };
    const idempotencyKey = idem.keyFor({ paymentId: paymentId.trim(), ...body });
    refund.mutate({ paymentId: paymentId.trim(), body: { ...body, idempotencyKey } }, { onSuccess: idem.done });
  };
  const r = refund.data?.refund;
  return (
    <section aria-labelledby="refund-h">
      <h2 id="refund-h">Refund a payment</h2>
      <form className="stack form-narrow" onSubmit={submit} noValidate>
        <Field label="Payment ID" value={paymentId} onChange={setPaymentId} />
        <Field
          label="Amount to refund"
          value={amount}
          onChange={setAmount}
          inputMode="decimal"
          hint="Leave empty to refund everything not yet refunded."
        />
        <Field label="Currency" value={currency} onChange={(v) => setCurrency(v.toUpperCase())} />
        <Field label="Reason" value={reason} onChange={setReason} />
        <FormError message={error} />
        {refund.isError && <ErrorState error={refund.error} />}
        {r && (
          <p className="banner banner-success" role="status">
            Refund of {formatMoney(r.amount)}: {labels.refundStatus(r.status)}; credits taken back{' '}
            {formatMoney(r.creditsTakenBack)}, not recovered {formatMoney(r.creditsNotRecovered)}
            {r.creditNoteNumber ? `; credit note ${r.creditNoteNumber}` : ''}.
          </p>
        )}
        <div className="actions">
          <button type="submit" className="btn btn-primary" disabled={refund.isPending}>
            Refund payment
          </button>
        </div>
      </form>
    </section>
  );
}

function Deliveries() {
  const [status, setStatus] = useState('');
  const pages = usePageTokens();
  const query = useDeliveriesQuery(status, pages.current);
  const selectId = useId();
  return (
    <section aria-labelledby="deliveries-h">
      <h2 id="deliveries-h">Email deliveries</h2>
      <div className="field field-inline">
        <label htmlFor={selectId}>Status</label>
        <select
          id={selectId}
          value={status}
          onChange={(e) => {
            pages.reset();
            setStatus(e.target.value);
          }}
        >
          <option value="">All</option>
          {labels.deliveryStatuses.map((s) => (
            <option key={s} value={s}>
              {labels.deliveryStatus(s)}
            </option>
          ))}
        </select>
      </div>
      <QueryView query={query} label="Loading deliveries…">
        {(data) =>
          (data.deliveries ?? []).length === 0 ? (
            <EmptyState>No emails.</EmptyState>
          ) : (
            <>
              <div className="table-wrap" role="group" aria-label="Email deliveries table" tabIndex={0}>
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Created</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Organization</th>
                      <th scope="col">To</th>
                      <th scope="col">Status</th>
                      <th scope="col" className="num">
                        Attempts
                      </th>
                      <th scope="col">Sent</th>
                    </tr>
                  </thead>
                  <tbody>
                    {(data.deliveries ?? []).map((d) => (
                      <tr key={d.id}>
                        <td>{formatDateTime(d.createTime)}</td>
                        <td>{labels.emailKind(d.kind)}</td>
                        <td>{d.orgId}</td>
                        <td>{d.to}</td>
                        <td>
                          {labels.deliveryStatus(d.status)}
                          {d.lastError && <div className="small muted">{d.lastError}</div>}
                        </td>
                        <td className="num">{d.attempts ?? 0}</td>
                        <td>{d.sentTime ? formatDay(d.sentTime) : '—'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              <Pager
                label="Deliveries"
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
