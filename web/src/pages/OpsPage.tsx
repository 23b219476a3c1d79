import { useId, useState, type FormEvent, type ReactNode } from 'react';
import * as Tabs from '@radix-ui/react-tabs';
import type { UseMutationResult, UseQueryResult } from '@tanstack/react-query';
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
import { formatMoney, parseMoney, type Money, type ParseOptions } from '../money';
import { formatDateTime, formatDay } from '../dates';
import { labels } from '../components/labels';
import { EmptyState, ErrorState, ForbiddenState, QueryView } from '../components/states';
import { usePageTokens } from '../components/Pager';
import { PagedList, PagedTable } from '../components/PagedList';
import { FilterSelect } from '../components/FilterSelect';
import { FormActions } from '../components/FormActions';
import { useIdempotencyKey } from '../idempotency';
import { dimensionText, ScheduledVersions } from './PricingPage';

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
      <PagedList
        query={query}
        pages={pages}
        label="Review items"
        loading="Loading review items…"
        items={(data) => data.items}
        empty="Nothing to review."
      >
        {(items) => (
          <ul className="cards">
            {items.map((item) => (
              <ReviewItemCard key={item.id} item={item} />
            ))}
          </ul>
        )}
      </PagedList>
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
      <ScheduledList
        query={models}
        loading="Loading model prices…"
        empty="No model price change is scheduled."
        text={(m) => (
          <>
            {formatDateTime(m.effectiveFrom)} — {m.displayName || m.modelId} ({m.versionId}):{' '}
            {(m.dimensions ?? []).map(dimensionText).join('; ')}
          </>
        )}
      />
      <h3>Instances</h3>
      <ScheduledList
        query={instances}
        loading="Loading instance prices…"
        empty="No instance price change is scheduled."
        text={(i) => (
          <>
            {formatDateTime(i.effectiveFrom)} — {i.instanceTypeId} ({i.versionId}): {formatMoney(i.hourlyPrice)} per
            hour{i.available === false ? ', not available' : ''}
          </>
        )}
      />
    </section>
  );
}

/** The scheduled price versions of a prices query, one line each. */
function ScheduledList<T extends { versionId?: string }>({
  query,
  loading,
  empty,
  text,
}: {
  query: UseQueryResult<{ scheduled?: T[] }>;
  loading: string;
  empty: string;
  text: (version: T) => ReactNode;
}) {
  return (
    <QueryView query={query} label={loading}>
      {(data) =>
        (data.scheduled ?? []).length === 0 ? (
          <EmptyState>{empty}</EmptyState>
        ) : (
          <ScheduledVersions versions={data.scheduled ?? []} text={text} />
        )
      }
    </QueryView>
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
  return (
    <CreditForm
      headingId="grant-h"
      title="Grant credits"
      amount={{ label: 'Amount', inputMode: 'decimal' }}
      mutation={useGrantMutation()}
      body={(amount, reason) => ({ amount, reason, source: 'CREDIT_SOURCE_GRANT' as const })}
      success={(d) => (
        <>
          Granted {formatMoney(d.transaction?.amount)}; balance now {formatMoney(d.balance)}.
        </>
      )}
      submit="Grant credits"
    />
  );
}

function AdjustmentForm() {
  return (
    <CreditForm
      headingId="adjust-h"
      title="Adjust a balance"
      amount={{
        label: 'Signed amount',
        inputMode: 'text',
        hint: 'Positive adds credits, negative removes them, e.g. -12.50.',
        parse: { allowNegative: true, maxFractionDigits: 9 },
      }}
      mutation={useAdjustmentMutation()}
      body={(amount, reason) => ({ amount, reason })}
      success={(d) => (
        <>
          Adjusted by {formatMoney(d.transaction?.amount, { signed: true })}; balance now {formatMoney(d.balance)}.
        </>
      )}
      submit="Adjust balance"
    />
  );
}

/** What a credit form's mutation answers: the transaction written and the balance after it. */
interface CreditAnswer {
  transaction?: { amount?: Money };
  balance?: Money;
}

/**
 * The form of an ops write to an organization's credits (a grant, an adjustment): organization,
 * amount, currency and reason, validated here, sent with one idempotency key per submission.
 */
function CreditForm<B extends { idempotencyKey?: string }, R extends CreditAnswer>({
  headingId,
  title,
  amount: amountField,
  mutation,
  body: bodyOf,
  success,
  submit: submitLabel,
}: {
  headingId: string;
  title: string;
  amount: { label: string; inputMode: 'decimal' | 'text'; hint?: string; parse?: ParseOptions };
  mutation: UseMutationResult<R, Error, { org: string; body: B }>;
  /** The request body, but for its idempotency key. */
  body: (amount: Money, reason: string) => Omit<B, 'idempotencyKey'>;
  success: (data: R) => ReactNode;
  submit: string;
}) {
  const idem = useIdempotencyKey();
  const [org, setOrg] = useState('');
  const [amount, setAmount] = useState('');
  const [currency, setCurrency] = useState('USD');
  const [reason, setReason] = useState('');
  const [error, setError] = useState('');
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseMoney(amount, currency, amountField.parse);
    if (org.trim() === '') return setError('Enter the organization.');
    if (!parsed.ok) return setError(parsed.error);
    if (reason.trim() === '') return setError('Enter the reason.');
    setError('');
    const body = bodyOf(parsed.value, reason.trim());
    const idempotencyKey = idem.keyFor({ org: org.trim(), ...body });
    mutation.mutate({ org: org.trim(), body: { ...body, idempotencyKey } as B }, { onSuccess: idem.done });
  };
  return (
    <section aria-labelledby={headingId}>
      <h2 id={headingId}>{title}</h2>
      <form className="stack form-narrow" onSubmit={submit} noValidate>
        <Field label="Organization" value={org} onChange={setOrg} />
        <Field
          label={amountField.label}
          value={amount}
          onChange={setAmount}
          inputMode={amountField.inputMode}
          hint={amountField.hint}
        />
        <Field label="Currency" value={currency} onChange={(v) => setCurrency(v.toUpperCase())} />
        <Field label="Reason" value={reason} onChange={setReason} />
        <FormError message={error} />
        <FormActions mutation={mutation} success={mutation.data && success(mutation.data)} submit={submitLabel} />
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
        <FormActions
          mutation={refund}
          success={
            r && (
              <>
                Refund of {formatMoney(r.amount)}: {labels.refundStatus(r.status)}; credits taken back{' '}
                {formatMoney(r.creditsTakenBack)}, not recovered {formatMoney(r.creditsNotRecovered)}
                {r.creditNoteNumber ? `; credit note ${r.creditNoteNumber}` : ''}.
              </>
            )
          }
          submit="Refund payment"
        />
      </form>
    </section>
  );
}

const DELIVERY_COLUMNS = [
  { label: 'Created' },
  { label: 'Kind' },
  { label: 'Organization' },
  { label: 'To' },
  { label: 'Status' },
  { label: 'Attempts', num: true },
  { label: 'Sent' },
];

const STATUS_OPTIONS = [
  { value: '', label: 'All' },
  ...labels.deliveryStatuses.map((s) => ({ value: s, label: labels.deliveryStatus(s) })),
];

function Deliveries() {
  const [status, setStatus] = useState('');
  const pages = usePageTokens();
  const query = useDeliveriesQuery(status, pages.current);
  return (
    <section aria-labelledby="deliveries-h">
      <h2 id="deliveries-h">Email deliveries</h2>
      <FilterSelect
        label="Status"
        value={status}
        options={STATUS_OPTIONS}
        onChange={(v) => {
          pages.reset();
          setStatus(v);
        }}
      />
      <PagedTable
        query={query}
        pages={pages}
        label="Deliveries"
        tableLabel="Email deliveries table"
        loading="Loading deliveries…"
        items={(data) => data.deliveries}
        empty="No emails."
        columns={DELIVERY_COLUMNS}
        row={(d) => (
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
        )}
      />
    </section>
  );
}
