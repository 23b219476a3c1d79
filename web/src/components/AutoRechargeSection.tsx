import { useId, useState, type FormEvent } from 'react';
import { useAutoRechargeQuery } from '../data/auto-recharge-query';
import { useAutoRechargeUpdateMutation } from '../data/auto-recharge-update-mutation';
import { usePaymentMethodSetupMutation } from '../data/payment-method-setup-mutation';
import { usePaymentMethodRemoveMutation } from '../data/payment-method-remove-mutation';
import type { AutoRechargeRule, SavedPaymentMethod } from '../api/types';
import { formatMoney, parseMoney, toDecimalString, type Money } from '../money';
import { formatDateTime } from '../dates';
import { nav } from '../nav';
import { EmptyState, ErrorState, QueryView } from './states';
import { FormActions } from './FormActions';

const brands: Record<string, string> = {
  visa: 'Visa',
  mastercard: 'Mastercard',
  amex: 'American Express',
  discover: 'Discover',
  jcb: 'JCB',
  diners: 'Diners Club',
  unionpay: 'UnionPay',
};

/** "Visa ending in 4242, expires 12/2029". */
export function cardText(m: SavedPaymentMethod): string {
  const brand = brands[m.brand ?? ''] ?? (m.brand || 'Card');
  const month = String(m.expMonth ?? 0).padStart(2, '0');
  return `${brand} ending in ${m.last4 ?? '????'}, expires ${month}/${m.expYear ?? ''}`;
}

/**
 * The Billing page's Auto-recharge section: the saved card (Add card / Replace card / Remove)
 * and the rule (threshold, a fixed amount or a target balance, the monthly cap, enabled). Members
 * read it; admins change it.
 */
export function AutoRechargeSection({ org, canEdit }: { org: string; canEdit: boolean }) {
  const query = useAutoRechargeQuery(org);
  return (
    <section aria-labelledby="auto-recharge-h">
      <h2 id="auto-recharge-h">Auto-recharge</h2>
      <p className="muted">
        Charge the saved card automatically when your available credits fall below a threshold, so you never run
        dry.
      </p>
      <QueryView query={query} label="Loading auto-recharge…">
        {(data) => (
          <div className="stack">
            {data.rule?.disabledReason && !data.rule.enabled && (
              <div className="banner banner-error" role="alert">
                <p>Auto-recharge was turned off: {data.rule.disabledReason}</p>
              </div>
            )}
            <SavedCard org={org} method={data.paymentMethod} canEdit={canEdit} />
            {canEdit ? (
              <RuleForm org={org} rule={data.rule ?? {}} hasCard={data.paymentMethod !== undefined} />
            ) : (
              <RuleView rule={data.rule ?? {}} />
            )}
          </div>
        )}
      </QueryView>
    </section>
  );
}

function SavedCard({ org, method, canEdit }: { org: string; method?: SavedPaymentMethod; canEdit: boolean }) {
  const setup = usePaymentMethodSetupMutation(org);
  const remove = usePaymentMethodRemoveMutation(org);
  const addCard = () =>
    setup.mutate(undefined, {
      onSuccess: (data) => {
        if (data.url) nav.assign(data.url);
      },
    });
  return (
    <div className="saved-card">
      <h3>Saved card</h3>
      {method ? (
        <p>
          <span data-testid="saved-card">{cardText(method)}</span>
          {method.testMode && <span className="badge">Test mode</span>}
          {method.saveTime && (
            <span className="small muted">
              {' '}
              · saved {formatDateTime(method.saveTime)}
              {method.savedBy?.name ? ` by ${method.savedBy.name}` : ''}
            </span>
          )}
        </p>
      ) : (
        <EmptyState>No card saved.</EmptyState>
      )}
      {canEdit && (
        <div className="actions">
          <button type="button" className="btn" onClick={addCard} disabled={setup.isPending}>
            {method ? 'Replace card' : 'Add card'}
          </button>
          {method && (
            <button type="button" className="btn btn-quiet" onClick={() => remove.mutate()} disabled={remove.isPending}>
              Remove
            </button>
          )}
        </div>
      )}
      {setup.isError && <ErrorState error={setup.error} />}
      {remove.isError && <ErrorState error={remove.error} />}
    </div>
  );
}

function RuleView({ rule }: { rule: AutoRechargeRule }) {
  if (!rule.enabled) return <p>Auto-recharge is off. An administrator of your organization can turn it on.</p>;
  return (
    <dl className="details">
      <dt>When available credits fall below</dt>
      <dd>{formatMoney(rule.threshold)}</dd>
      <dt>{rule.targetBalance ? 'Recharge up to' : 'Recharge'}</dt>
      <dd>{formatMoney(rule.targetBalance ?? rule.amount)}</dd>
      <dt>Monthly cap</dt>
      <dd>
        {formatMoney(rule.monthlyCap)} ({formatMoney(rule.monthSpent)} used this month)
      </dd>
    </dl>
  );
}

type Kind = 'amount' | 'target';

function RuleForm({ org, rule, hasCard }: { org: string; rule: AutoRechargeRule; hasCard: boolean }) {
  const save = useAutoRechargeUpdateMutation(org);
  const currency =
    rule.threshold?.currencyCode || rule.monthSpent?.currencyCode || rule.monthlyCap?.currencyCode || 'USD';
  const text = (m?: Money) => (m ? toDecimalString(m) : '');
  const [enabled, setEnabled] = useState(rule.enabled ?? false);
  const [kind, setKind] = useState<Kind>(rule.targetBalance ? 'target' : 'amount');
  const [threshold, setThreshold] = useState(text(rule.threshold));
  const [amount, setAmount] = useState(text(rule.targetBalance ?? rule.amount));
  const [cap, setCap] = useState(text(rule.monthlyCap));
  const [error, setError] = useState('');
  const ids = { threshold: useId(), amount: useId(), cap: useId(), enabled: useId(), err: useId() };

  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.reset();
    const fields: [string, string][] = [
      ['threshold', threshold],
      [kind === 'target' ? 'target balance' : 'amount', amount],
      ['monthly cap', cap],
    ];
    const values: (Money | undefined)[] = [];
    for (const [name, value] of fields) {
      if (value.trim() === '' && !enabled) {
        values.push(undefined);
        continue;
      }
      const parsed = parseMoney(value, currency);
      if (!parsed.ok) {
        setError(`The ${name}: ${parsed.error}`);
        return;
      }
      values.push(parsed.value);
    }
    setError('');
    const [t, a, c] = values;
    save.mutate({
      enabled,
      threshold: t,
      amount: kind === 'amount' ? a : undefined,
      targetBalance: kind === 'target' ? a : undefined,
      monthlyCap: c,
    });
  };
  const edit =
    <T,>(set: (v: T) => void) =>
    (v: T) => {
      save.reset();
      set(v);
    };

  return (
    <form className="stack form-narrow" onSubmit={submit} noValidate aria-label="Auto-recharge rule">
      <div className="field field-check">
        <input
          id={ids.enabled}
          type="checkbox"
          checked={enabled}
          onChange={(e) => edit(setEnabled)(e.target.checked)}
          disabled={!hasCard && !enabled}
        />
        <label htmlFor={ids.enabled}>Enable auto-recharge</label>
        {!hasCard && <p className="hint">Add a card to enable auto-recharge.</p>}
      </div>
      <div className="field">
        <label htmlFor={ids.threshold}>When available credits fall below ({currency})</label>
        <input
          id={ids.threshold}
          inputMode="decimal"
          value={threshold}
          onChange={(e) => edit(setThreshold)(e.target.value)}
        />
      </div>
      <fieldset>
        <legend>How much to recharge</legend>
        <label>
          <input type="radio" name="recharge-kind" checked={kind === 'amount'} onChange={() => edit(setKind)('amount')} />{' '}
          A fixed amount
        </label>
        <label>
          <input type="radio" name="recharge-kind" checked={kind === 'target'} onChange={() => edit(setKind)('target')} />{' '}
          Up to a target balance
        </label>
      </fieldset>
      <div className="field">
        <label htmlFor={ids.amount}>
          {kind === 'target' ? 'Target balance' : 'Recharge amount'} ({currency})
        </label>
        <input id={ids.amount} inputMode="decimal" value={amount} onChange={(e) => edit(setAmount)(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor={ids.cap}>Monthly cap ({currency})</label>
        <input id={ids.cap} inputMode="decimal" value={cap} onChange={(e) => edit(setCap)(e.target.value)} />
        <p className="hint">
          At most this much is recharged automatically per calendar month (UTC); {formatMoney(rule.monthSpent)} used
          this month.
        </p>
      </div>
      {error !== '' && (
        <p id={ids.err} className="field-error" role="alert">
          {error}
        </p>
      )}
      <FormActions
        mutation={save}
        success={save.isSuccess && 'Auto-recharge saved.'}
        submit={save.isPending ? 'Saving…' : 'Save auto-recharge'}
      />
    </form>
  );
}
