import { useState, type FormEvent } from 'react';
import { hasRole } from '../auth/me';
import { useMe } from '../auth/session';
import { useSpendLimitQuery } from '../data/spend-limit-query';
import { useSpendLimitUpdateMutation } from '../data/spend-limit-update-mutation';
import type { SpendLimitStatus } from '../api/types';
import { formatMoney, isZero, parseMoney, toDecimalString, toNanos, type Money } from '../money';
import { QueryView } from './states';
import { FormActions } from './FormActions';
import { ProjectLimits } from './ProjectLimits';
import { TextField } from './TextField';

/** Settings → Limits: the organization's monthly spend limit and the per-project limits (admins edit, members read). */
export function LimitsSection({ org }: { org: string }) {
  const query = useSpendLimitQuery(org);
  return (
    <section aria-labelledby="limits-h">
      <h2 id="limits-h">Limits</h2>
      <p className="hint">
        A monthly spend limit caps what your organization can be charged in a calendar month (UTC). Once it is
        reached, new calls are refused until the next month or until an admin raises the limit; usage that already
        happened is still charged.
      </p>
      <QueryView query={query} label="Loading spend limit…">
        {(data) => (
          <>
            <Limits org={org} status={data.spendLimit ?? {}} />
            <ProjectLimits
              org={org}
              currency={data.spendLimit?.limit?.currencyCode || data.spendLimit?.monthSpend?.currencyCode || 'USD'}
            />
          </>
        )}
      </QueryView>
    </section>
  );
}

function monthName(month: string | undefined): string {
  if (!month) return 'This month';
  const [y, m] = month.split('-').map(Number);
  if (!y || !m) return month;
  return new Date(Date.UTC(y, m - 1, 1)).toLocaleString('en-US', { month: 'long', year: 'numeric', timeZone: 'UTC' });
}

/** Percent of the limit spent, for the meter: capped at 100, exact enough for display. */
function percentSpent(status: SpendLimitStatus): number {
  const limit = toNanos(status.limit);
  if (limit <= 0n) return 0;
  const spent = toNanos(status.monthSpend);
  const pct = Number((spent * 1000n) / limit) / 10;
  return Math.min(pct, 100);
}

function Limits({ org, status }: { org: string; status: SpendLimitStatus }) {
  const me = useMe();
  const isAdmin = hasRole(me, 'admin');
  const limited = !isZero(status.limit) && status.limit !== undefined;
  const pct = percentSpent(status);
  return (
    <div className="stack form-narrow">
      <dl className="details">
        <dt>Spent in {monthName(status.month)} (UTC)</dt>
        <dd data-testid="month-spend">{formatMoney(status.monthSpend)}</dd>
        <dt>Monthly spend limit</dt>
        <dd data-testid="spend-limit">{limited ? formatMoney(status.limit) : 'No limit'}</dd>
        {limited && (
          <>
            <dt>Remaining this month</dt>
            <dd>{formatMoney(status.remaining)}</dd>
            <dt>Alert</dt>
            <dd>{status.alertPercent ? `At ${status.alertPercent}% of the limit${status.alerted ? ' (sent this month)' : ''}` : 'None'}</dd>
          </>
        )}
      </dl>
      {limited && (
        <meter
          className="spend-meter"
          aria-label="Spent of the monthly limit"
          min={0}
          max={100}
          value={pct}
          high={status.alertPercent || 100}
          optimum={0}
        >
          {pct}%
        </meter>
      )}
      {status.reached && (
        <p className="banner banner-error" role="alert">
          The monthly spend limit is reached: calls are refused until {nextMonthName(status.month)} or a higher limit.
        </p>
      )}
      {isAdmin ? (
        <LimitsForm org={org} status={status} />
      ) : (
        <p className="hint">Only admins of your organization can change the spend limit.</p>
      )}
    </div>
  );
}

function nextMonthName(month: string | undefined): string {
  if (!month) return 'next month';
  const [y, m] = month.split('-').map(Number);
  if (!y || !m) return 'next month';
  return new Date(Date.UTC(y, m, 1)).toLocaleString('en-US', { month: 'long', day: 'numeric', timeZone: 'UTC' });
}

function LimitsForm({ org, status }: { org: string; status: SpendLimitStatus }) {
  const save = useSpendLimitUpdateMutation(org);
  const currency = status.limit?.currencyCode || status.monthSpend?.currencyCode || 'USD';
  const [limit, setLimit] = useState(isZero(status.limit) ? '' : toDecimalString(status.limit));
  const [percent, setPercent] = useState(status.alertPercent ? String(status.alertPercent) : '');
  const [limitError, setLimitError] = useState('');
  const [percentError, setPercentError] = useState('');

  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.reset();
    let amount: Money = { currencyCode: currency, units: '0', nanos: 0 };
    let limitErr = '';
    if (limit.trim() !== '') {
      const parsed = parseMoney(limit, currency);
      if (parsed.ok) amount = parsed.value;
      else limitErr = parsed.error;
    }
    let alertPercent = 0;
    let percentErr = '';
    if (percent.trim() !== '') {
      const n = Number(percent.trim());
      if (!/^\d+$/.test(percent.trim()) || n < 1 || n > 100) percentErr = 'Enter a whole percentage from 1 to 100.';
      else if (limit.trim() === '') percentErr = 'Set a limit to get an alert.';
      else alertPercent = n;
    }
    setLimitError(limitErr);
    setPercentError(percentErr);
    if (limitErr !== '' || percentErr !== '') return;
    save.mutate({ limit: amount, alertPercent });
  };

  return (
    <form className="stack" onSubmit={submit} noValidate aria-label="Spend limit">
      <TextField
        label={`Monthly spend limit (${currency})`}
        value={limit}
        onChange={(v) => {
          save.reset();
          setLimit(v);
        }}
        error={limitError}
        inputMode="decimal"
        hint="Leave empty for no limit."
      />
      <TextField
        label="Alert email at (% of the limit)"
        value={percent}
        onChange={(v) => {
          save.reset();
          setPercent(v);
        }}
        error={percentError}
        inputMode="numeric"
        hint="One email per month to your organization's members when spending reaches it. Leave empty for none."
      />
      <FormActions mutation={save} success={save.isSuccess && 'Spend limit saved.'} submit={save.isPending ? 'Saving…' : 'Save limit'} />
    </form>
  );
}
