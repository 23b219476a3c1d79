import { useEffect, useId, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router';
import { useQueryClient } from '@tanstack/react-query';
import { useMe } from '../auth/session';
import { hasRole } from '../auth/me';
import { usePaymentsQuery } from '../data/payments-query';
import { usePaymentQuery } from '../data/payment-query';
import { useBillingProfileQuery } from '../data/billing-profile-query';
import { useBillingProfileUpdateMutation } from '../data/billing-profile-update-mutation';
import { keys } from '../data/keys';
import type { BillingProfile, Payment, Refund } from '../api/types';
import { formatMoney, isZero } from '../money';
import { formatDateTime, formatDay } from '../dates';
import { labels } from '../components/labels';
import { EmptyState, ErrorState, LoadingState, QueryView } from '../components/states';
import { usePageTokens } from '../components/Pager';
import { PagedTable } from '../components/PagedList';
import { FormActions } from '../components/FormActions';
import { useAddCredits } from '../components/AddCreditsDialog';
import { AutoRechargeSection } from '../components/AutoRechargeSection';
import { useAutoRechargeQuery } from '../data/auto-recharge-query';
import { NoOrganization } from './NoOrganization';
import { checkoutPayment, pollUntilSettled, pollWhilePending } from './billing-poll';

function paymentMethodText(p: Payment): string {
  const wallets: Record<string, string> = { google_pay: 'Google Pay', apple_pay: 'Apple Pay' };
  const method = p.paymentMethod === 'card' ? 'Credit Card' : (p.paymentMethod ?? '');
  const wallet = p.paymentWallet ? (wallets[p.paymentWallet] ?? p.paymentWallet) : '';
  return wallet !== '' ? `${method} · ${wallet}` : method;
}

export function BillingPage() {
  const me = useMe();
  const addCredits = useAddCredits();
  if (me.orgId === '') return <NoOrganization title="Billing" />;
  return (
    <>
      <div className="page-head">
        <h1>Billing</h1>
        <button type="button" className="btn btn-primary" onClick={() => addCredits.open()}>
          Add Credits
        </button>
      </div>
      <CheckoutBanner org={me.orgId} />
      <SetupBanner org={me.orgId} />
      <Payments org={me.orgId} />
      <AutoRechargeSection org={me.orgId} canEdit={hasRole(me, 'admin') || hasRole(me, 'ops')} />
      <BillingProfileSection org={me.orgId} canEdit={hasRole(me, 'admin') || hasRole(me, 'ops')} />
    </>
  );
}

/** After Checkout: success (maybe still pending at the processor), or cancelled. */
function CheckoutBanner({ org }: { org: string }) {
  const [params, setParams] = useSearchParams();
  const outcome = params.get('checkout');
  const sessionId = params.get('session_id') ?? '';
  const qc = useQueryClient();
  const watching = outcome === 'success';
  const payments = usePaymentsQuery(org, '', watching ? pollUntilSettled(sessionId) : undefined);
  const payment = checkoutPayment(payments.data, sessionId);
  const status = payment?.status;

  useEffect(() => {
    // Each new status may have credited the balance.
    if (watching) void qc.invalidateQueries({ queryKey: keys.balance(org) });
  }, [watching, status, qc, org]);

  if (outcome !== 'success' && outcome !== 'cancelled') return null;
  const dismiss = () => {
    params.delete('checkout');
    params.delete('session_id');
    setParams(params, { replace: true });
  };
  let tone = 'info';
  let text: string;
  if (outcome === 'cancelled') {
    tone = 'warn';
    text = 'Checkout cancelled. Nothing was charged.';
  } else if (status === 'PAYMENT_STATUS_SUCCEEDED') {
    tone = 'success';
    text = `Payment received: ${formatMoney(payment?.amount)} was added to your credits.`;
  } else if (status === 'PAYMENT_STATUS_FAILED') {
    tone = 'error';
    text = 'The payment failed. Nothing was credited.';
  } else if (status === 'PAYMENT_STATUS_EXPIRED') {
    tone = 'error';
    text = 'The checkout expired before it was paid.';
  } else if (!payment && sessionId === '' && payments.isSuccess) {
    tone = 'success';
    text = 'Thank you. Your payment is listed below.';
  } else {
    text = 'Payment pending: we are waiting for the payment to be confirmed. This page updates by itself.';
  }
  return (
    <div className={`banner banner-${tone}`} role="status" aria-live="polite">
      <p>{text}</p>
      <button type="button" className="btn btn-quiet" onClick={dismiss}>
        Dismiss
      </button>
    </div>
  );
}

/** After saving a card: its webhook may still be on its way, so the section is read again until it shows. */
function SetupBanner({ org }: { org: string }) {
  const [params, setParams] = useSearchParams();
  const outcome = params.get('setup');
  const query = useAutoRechargeQuery(org);
  const saved = query.data?.paymentMethod !== undefined;
  const { refetch } = query;
  useEffect(() => {
    if (outcome !== 'success' || saved) return;
    const t = setInterval(() => void refetch(), 1000);
    return () => clearInterval(t);
  }, [outcome, saved, refetch]);
  if (outcome !== 'success' && outcome !== 'cancelled') return null;
  const dismiss = () => {
    params.delete('setup');
    setParams(params, { replace: true });
  };
  let tone = 'info';
  let text = 'Saving your card… This page updates by itself.';
  if (outcome === 'cancelled') {
    tone = 'warn';
    text = 'No card was saved.';
  } else if (saved) {
    tone = 'success';
    text = 'Card saved. Auto-recharge can use it.';
  }
  return (
    <div className={`banner banner-${tone}`} role="status" aria-live="polite">
      <p>{text}</p>
      <button type="button" className="btn btn-quiet" onClick={dismiss}>
        Dismiss
      </button>
    </div>
  );
}

const failureText: Record<string, string> = {
  declined: 'Card declined',
  authentication_required: 'Card needs authentication',
};

const PAYMENT_COLUMNS = [
  { label: 'Date' },
  { label: 'Amount', num: true },
  { label: 'Status' },
  { label: 'Paid by' },
  { label: 'Invoice' },
  { label: 'Refunds' },
];

function Payments({ org }: { org: string }) {
  const pages = usePageTokens();
  const query = usePaymentsQuery(org, pages.current, pollWhilePending);
  return (
    <section aria-labelledby="payments-h">
      <h2 id="payments-h">Payments</h2>
      <PagedTable
        query={query}
        pages={pages}
        label="Payments"
        loading="Loading payments…"
        items={(data) => data.payments}
        empty="No payments yet. Use Add Credits to make your first payment."
        columns={PAYMENT_COLUMNS}
        row={(p) => <PaymentRow key={p.id} org={org} payment={p} />}
      />
    </section>
  );
}

function PaymentRow({ org, payment: p }: { org: string; payment: Payment }) {
  const [showRefunds, setShowRefunds] = useState(false);
  const refunded = p.refunded && !isZero(p.refunded);
  const invoiceHref = `/v1/orgs/${encodeURIComponent(org)}/payments/${encodeURIComponent(p.id ?? '')}/invoice`;
  const detailsId = useId();
  return (
    <>
      <tr>
        <td>{formatDateTime(p.paidAt ?? p.createdAt)}</td>
        <td className="num">{formatMoney(p.amount)}</td>
        <td>
          <span className={`status status-${(p.status ?? '').toLowerCase()}`}>{labels.paymentStatus(p.status)}</span>
          {p.automatic && <span className="badge badge-auto">Automatic</span>}
          {p.testMode && <span className="badge">Test mode</span>}
          {p.failureReason && <div className="small muted">{failureText[p.failureReason] ?? p.failureReason}</div>}
          {p.paymentMethod && <div className="small muted">{paymentMethodText(p)}</div>}
          {p.underReview && <span className="badge badge-warn">Under review</span>}
        </td>
        <td>{p.member?.name || p.member?.email || p.member?.id || '—'}</td>
        <td>
          {p.invoiceNumber ? (
            <>
              <span className="invoice-number">{p.invoiceNumber}</span>{' '}
              <a href={invoiceHref} download={`${p.invoiceNumber}.pdf`} className="link">
                Download invoice
              </a>
            </>
          ) : (
            <span className="muted">—</span>
          )}
        </td>
        <td>
          {refunded ? (
            <button
              type="button"
              className="btn btn-quiet"
              aria-expanded={showRefunds}
              aria-controls={detailsId}
              onClick={() => setShowRefunds((s) => !s)}
            >
              {formatMoney(p.refunded)} refunded
            </button>
          ) : (
            <span className="muted">—</span>
          )}
        </td>
      </tr>
      {refunded && showRefunds && (
        <tr id={detailsId}>
          <td colSpan={6}>
            {p.refunds !== undefined && p.refunds.length > 0 ? (
              <Refunds org={org} paymentId={p.id ?? ''} refunds={p.refunds} />
            ) : (
              <RefundList org={org} paymentId={p.id ?? ''} />
            )}
          </td>
        </tr>
      )}
    </>
  );
}

function RefundList({ org, paymentId }: { org: string; paymentId: string }) {
  const query = usePaymentQuery(org, paymentId, true);
  if (query.isPending) return <LoadingState label="Loading refunds…" />;
  if (query.isError) return <ErrorState error={query.error} onRetry={() => void query.refetch()} />;
  const refunds = query.data.refunds ?? [];
  if (refunds.length === 0) return <EmptyState>No refunds.</EmptyState>;
  return <Refunds org={org} paymentId={paymentId} refunds={refunds} />;
}

function Refunds({ org, paymentId, refunds }: { org: string; paymentId: string; refunds: Refund[] }) {
  return (
    <ul className="refunds">
      {refunds.map((r) => (
        <li key={r.id}>
          {formatDay(r.createdAt)}: {formatMoney(r.amount)} — {labels.refundStatus(r.status)}
          {r.reason ? ` (${r.reason})` : ''}
          {r.creditNoteNumber && (
            <>
              {' '}
              · Credit note {r.creditNoteNumber}{' '}
              <a
                className="link"
                download={`${r.creditNoteNumber}.pdf`}
                href={`/v1/orgs/${encodeURIComponent(org)}/payments/${encodeURIComponent(paymentId)}/credit-notes/${encodeURIComponent(r.id ?? '')}`}
              >
                Download credit note
              </a>
            </>
          )}
        </li>
      ))}
    </ul>
  );
}

function BillingProfileSection({ org, canEdit }: { org: string; canEdit: boolean }) {
  const query = useBillingProfileQuery(org);
  return (
    <section aria-labelledby="profile-h">
      <h2 id="profile-h">Billing profile</h2>
      <p className="muted">The details printed on your invoices.</p>
      <QueryView query={query} label="Loading billing profile…">
        {(data) =>
          canEdit ? (
            <BillingProfileForm org={org} profile={data.profile ?? {}} />
          ) : (
            <BillingProfileView profile={data.profile ?? {}} />
          )
        }
      </QueryView>
    </section>
  );
}

function BillingProfileView({ profile }: { profile: BillingProfile }) {
  if (!profile.legalName && !profile.address && !profile.taxId && !profile.email) {
    return <EmptyState>No billing profile yet. An administrator of your organization can set it.</EmptyState>;
  }
  return (
    <dl className="details">
      <dt>Legal name</dt>
      <dd>{profile.legalName || '—'}</dd>
      <dt>Address</dt>
      <dd className="pre">{profile.address || '—'}</dd>
      <dt>Tax ID</dt>
      <dd>{profile.taxId || '—'}</dd>
      <dt>Billing email</dt>
      <dd>{profile.email || '—'}</dd>
    </dl>
  );
}

function BillingProfileForm({ org, profile }: { org: string; profile: BillingProfile }) {
  const save = useBillingProfileUpdateMutation(org);
  const [form, setForm] = useState({
    legalName: profile.legalName ?? '',
    address: profile.address ?? '',
    taxId: profile.taxId ?? '',
    email: profile.email ?? '',
  });
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => {
    save.reset();
    setForm((f) => ({ ...f, [k]: e.target.value }));
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.mutate({ ...form });
  };
  return (
    <form className="stack form-narrow" onSubmit={submit}>
      <div className="field">
        <label htmlFor="bp-legal">Legal name</label>
        <input id="bp-legal" value={form.legalName} onChange={set('legalName')} autoComplete="organization" />
      </div>
      <div className="field">
        <label htmlFor="bp-address">Address</label>
        <textarea id="bp-address" rows={3} value={form.address} onChange={set('address')} autoComplete="street-address" />
      </div>
      <div className="field">
        <label htmlFor="bp-tax">Tax ID</label>
        <input id="bp-tax" value={form.taxId} onChange={set('taxId')} />
      </div>
      <div className="field">
        <label htmlFor="bp-email">Billing email</label>
        <input id="bp-email" type="email" value={form.email} onChange={set('email')} autoComplete="email" />
      </div>
      <FormActions
        mutation={save}
        success={save.isSuccess && 'Billing profile saved.'}
        submit={save.isPending ? 'Saving…' : 'Save billing profile'}
      />
    </form>
  );
}
