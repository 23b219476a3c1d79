import { useId, useState, type FormEvent } from 'react';
import * as Switch from '@radix-ui/react-switch';
import { useMe } from '../auth/session';
import { useNotificationSettingsQuery } from '../data/notification-settings-query';
import { useNotificationSettingsUpdateMutation } from '../data/notification-settings-update-mutation';
import type { NotificationSettings } from '../api/types';
import { formatMoney, parseMoney, toDecimalString } from '../money';
import { QueryView } from '../components/states';
import { FormActions } from '../components/FormActions';
import { LimitsSection } from '../components/LimitsSection';
import { NoOrganization } from './NoOrganization';

export function NotificationsPage() {
  const me = useMe();
  const query = useNotificationSettingsQuery(me.orgId);
  if (me.orgId === '') return <NoOrganization title="Settings" />;
  return (
    <>
      <h1>Settings</h1>
      <section aria-labelledby="notifications-h">
        <h2 id="notifications-h">Notifications</h2>
        <QueryView query={query} label="Loading notification settings…">
          {(data) => <NotificationsForm org={me.orgId} settings={data.settings ?? {}} />}
        </QueryView>
      </section>
      <LimitsSection org={me.orgId} />
    </>
  );
}

function Toggle({
  label,
  hint,
  checked,
  onChange,
}: {
  label: string;
  hint?: string;
  checked: boolean;
  onChange: (v: boolean) => void;
}) {
  const id = useId();
  const hintId = useId();
  return (
    <div className="switch-row">
      <Switch.Root
        id={id}
        className="switch"
        checked={checked}
        onCheckedChange={onChange}
        aria-describedby={hint ? hintId : undefined}
      >
        <Switch.Thumb className="switch-thumb" />
      </Switch.Root>
      <div>
        <label htmlFor={id}>{label}</label>
        {hint && (
          <p id={hintId} className="hint">
            {hint}
          </p>
        )}
      </div>
    </div>
  );
}

function NotificationsForm({ org, settings }: { org: string; settings: NotificationSettings }) {
  const save = useNotificationSettingsUpdateMutation(org);
  const currency = settings.lowCreditThreshold?.currencyCode || settings.lastKnownBalance?.currencyCode || 'USD';
  const [lowEnabled, setLowEnabled] = useState(settings.lowCreditAlertEnabled ?? false);
  const [threshold, setThreshold] = useState(
    settings.lowCreditThreshold ? toDecimalString(settings.lowCreditThreshold) : '',
  );
  const [email, setEmail] = useState(settings.email ?? '');
  const [expiring, setExpiring] = useState(settings.creditsExpiringEnabled ?? false);
  const [expired, setExpired] = useState(settings.creditsExpiredEnabled ?? false);
  const [payment, setPayment] = useState(settings.paymentSucceededEnabled ?? false);
  const [suspended, setSuspended] = useState(settings.rentalSuspendedEnabled ?? false);
  const [thresholdError, setThresholdError] = useState('');
  const thresholdId = useId();
  const thresholdErrId = useId();
  const emailId = useId();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.reset();
    let lowCreditThreshold = settings.lowCreditThreshold;
    if (threshold.trim() !== '' || lowEnabled) {
      const parsed = parseMoney(threshold, currency);
      if (!parsed.ok) {
        setThresholdError(lowEnabled && threshold.trim() === '' ? 'Enter the credit limit to enable the alert.' : parsed.error);
        return;
      }
      lowCreditThreshold = parsed.value;
    }
    setThresholdError('');
    save.mutate({
      lowCreditAlertEnabled: lowEnabled,
      lowCreditThreshold,
      email: email.trim(),
      creditsExpiringEnabled: expiring,
      creditsExpiredEnabled: expired,
      paymentSucceededEnabled: payment,
      rentalSuspendedEnabled: suspended,
    });
  };
  const change = <T,>(set: (v: T) => void) => (v: T) => {
    save.reset();
    set(v);
  };

  return (
    <form className="stack form-narrow" onSubmit={submit} noValidate>
      <fieldset>
        <legend>Low Credit Alert</legend>
        <Toggle
          label="Low Credit Alert"
          hint="Receive an email when your credit balance is below the defined limit."
          checked={lowEnabled}
          onChange={change(setLowEnabled)}
        />
        <div className="field">
          <label htmlFor={thresholdId}>Set the credit limit to receive notifications ({currency})</label>
          <input
            id={thresholdId}
            inputMode="decimal"
            value={threshold}
            onChange={(e) => {
              save.reset();
              setThreshold(e.target.value);
            }}
            aria-invalid={thresholdError !== ''}
            aria-describedby={thresholdError !== '' ? thresholdErrId : undefined}
          />
          {thresholdError !== '' && (
            <p id={thresholdErrId} className="field-error" role="alert">
              {thresholdError}
            </p>
          )}
          {settings.lastKnownBalance && (
            <p className="hint">Current balance: {formatMoney(settings.lastKnownBalance)}</p>
          )}
        </div>
      </fieldset>
      <fieldset>
        <legend>Other emails</legend>
        <Toggle label="Credits expiring" hint="When your credits expire within 7 days." checked={expiring} onChange={change(setExpiring)} />
        <Toggle label="Credits expired" hint="When your credits have expired." checked={expired} onChange={change(setExpired)} />
        <Toggle label="Payment received" hint="When a payment succeeded and credits were added." checked={payment} onChange={change(setPayment)} />
        <Toggle
          label="Instance suspended"
          hint="When a rented instance was suspended for insufficient credits."
          checked={suspended}
          onChange={change(setSuspended)}
        />
      </fieldset>
      <div className="field">
        <label htmlFor={emailId}>Email address for notifications</label>
        <input
          id={emailId}
          type="email"
          autoComplete="email"
          value={email}
          placeholder={settings.effectiveEmail ?? ''}
          onChange={(e) => {
            save.reset();
            setEmail(e.target.value);
          }}
        />
        <p className="hint">
          {settings.effectiveEmail
            ? `Emails go to ${settings.effectiveEmail}. Leave empty to use your account's email.`
            : "Leave empty to use your account's email."}
        </p>
      </div>
      <FormActions mutation={save} success={save.isSuccess && 'Notification settings saved.'} submit={save.isPending ? 'Saving…' : 'Save'} />
    </form>
  );
}
