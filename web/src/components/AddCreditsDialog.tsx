import { createContext, useCallback, useContext, useId, useMemo, useRef, useState, type FormEvent, type ReactNode, type RefObject } from 'react';
import * as Dialog from '@radix-ui/react-dialog';
import { useMe } from '../auth/session';
import { useCheckoutOptionsQuery } from '../data/checkout-options-query';
import { useCheckoutSessionMutation } from '../data/checkout-session-mutation';
import { compareMoney, formatMoney, parseMoney, toDecimalString, type Money } from '../money';
import { addMonths, formatDay } from '../dates';
import { nav } from '../nav';
import { ErrorState, LoadingState } from './states';

export const VALIDITY_NOTE =
  'Credits have a validity of 3 months. Any recharge made within 3 months renews the validity of the total credits (remaining and new).';

interface AddCreditsApi {
  open: () => void;
}
const AddCreditsContext = createContext<AddCreditsApi>({ open: () => undefined });

export function useAddCredits(): AddCreditsApi {
  return useContext(AddCreditsContext);
}

/** Owns the Add Credits modal so the balance menu, Billing and Instances can all open it. */
export function AddCreditsProvider({ children }: { children: ReactNode }) {
  const [open, setOpen] = useState(false);
  const returnTo = useRef<HTMLElement | null>(null);
  const api = useMemo(
    () => ({
      open: () => {
        returnTo.current = openerOf(document.activeElement);
        setOpen(true);
      },
    }),
    [],
  );
  return (
    <AddCreditsContext.Provider value={api}>
      {children}
      <AddCreditsDialog open={open} onOpenChange={setOpen} returnFocusTo={returnTo} />
    </AddCreditsContext.Provider>
  );
}

/**
 * Where focus goes back when the modal closes: the control that opened it, or, when that was an
 * item of a menu (which is gone by then), the button of that menu (the balance).
 */
function openerOf(el: Element | null): HTMLElement | null {
  const menu = el?.closest('[role="menu"]');
  const trigger = menu?.getAttribute('aria-labelledby');
  if (trigger) return document.getElementById(trigger);
  return el instanceof HTMLElement && el !== document.body ? el : null;
}

export interface AmountLimits {
  currencyCode: string;
  minAmount?: Money;
  maxAmount?: Money;
}

/** Checks what the member typed against the server's limits; returns the amount or the message. */
export function validateAmount(
  input: string,
  limits: AmountLimits,
): { ok: true; amount: Money } | { ok: false; error: string } {
  const parsed = parseMoney(input, limits.currencyCode);
  if (!parsed.ok) return parsed;
  if (compareMoney(parsed.value, { units: '0', nanos: 0 }) <= 0) {
    return { ok: false, error: 'The amount must be more than zero.' };
  }
  if (limits.minAmount && compareMoney(parsed.value, limits.minAmount) < 0) {
    return { ok: false, error: `The minimum is ${formatMoney(limits.minAmount)}.` };
  }
  if (limits.maxAmount && compareMoney(parsed.value, limits.maxAmount) > 0) {
    return { ok: false, error: `The maximum is ${formatMoney(limits.maxAmount)}.` };
  }
  return { ok: true, amount: parsed.value };
}

export function AddCreditsDialog({
  open,
  onOpenChange,
  returnFocusTo,
}: {
  open: boolean;
  onOpenChange: (o: boolean) => void;
  returnFocusTo?: RefObject<HTMLElement | null>;
}) {
  return (
    <Dialog.Root open={open} onOpenChange={onOpenChange}>
      <Dialog.Portal>
        <Dialog.Overlay className="dialog-overlay" />
        <Dialog.Content
          className="dialog"
          aria-describedby="add-credits-note"
          onCloseAutoFocus={(e) => {
            const el = returnFocusTo?.current;
            if (el && el.isConnected) {
              e.preventDefault();
              el.focus();
            }
          }}
        >
          <Dialog.Title className="dialog-title">Add Credits</Dialog.Title>
          {open && <AddCreditsForm />}
          <Dialog.Close className="dialog-close" aria-label="Close">
            ×
          </Dialog.Close>
        </Dialog.Content>
      </Dialog.Portal>
    </Dialog.Root>
  );
}

function AddCreditsForm() {
  const me = useMe();
  const options = useCheckoutOptionsQuery(me.orgId);
  const checkout = useCheckoutSessionMutation(me.orgId);
  const [input, setInput] = useState('');
  const [touched, setTouched] = useState(false);
  const inputId = useId();
  const errorId = useId();
  const hintId = useId();

  const opts = options.data;
  const currency = opts?.currencyCode || opts?.minAmount?.currencyCode || 'USD';
  const limits: AmountLimits = { currencyCode: currency, minAmount: opts?.minAmount, maxAmount: opts?.maxAmount };
  const result = validateAmount(input, limits);
  const showError = touched && !result.ok;
  const validityMonths = opts?.validityMonths && opts.validityMonths > 0 ? opts.validityMonths : 3;
  const newExpiry = addMonths(new Date(), validityMonths);

  const submit = useCallback(
    (e: FormEvent) => {
      e.preventDefault();
      setTouched(true);
      if (!result.ok) return;
      checkout.mutate(result.amount, {
        onSuccess: (data) => {
          if (data.url) nav.assign(data.url);
        },
      });
    },
    [checkout, result],
  );

  if (options.isPending) return <LoadingState />;
  if (options.isError) return <ErrorState error={options.error} onRetry={() => void options.refetch()} />;

  return (
    <form onSubmit={submit} noValidate className="stack">
      <p id="add-credits-note" className="note">
        {VALIDITY_NOTE}
      </p>
      <div className="field">
        <label htmlFor={inputId}>Amount ({currency})</label>
        <input
          id={inputId}
          name="amount"
          inputMode="decimal"
          autoComplete="off"
          value={input}
          onChange={(e) => setInput(e.target.value)}
          onBlur={() => setTouched(true)}
          aria-invalid={showError}
          aria-describedby={`${hintId}${showError ? ` ${errorId}` : ''}`}
        />
        <p id={hintId} className="hint">
          {opts?.minAmount && opts.maxAmount
            ? `From ${formatMoney(opts.minAmount)} to ${formatMoney(opts.maxAmount)}.`
            : 'Enter the amount to add.'}
        </p>
        {showError && (
          <p id={errorId} className="field-error" role="alert">
            {result.error}
          </p>
        )}
      </div>
      {opts?.presets && opts.presets.length > 0 && (
        <div className="presets" role="group" aria-label="Preset amounts">
          {opts.presets.map((p) => {
            const value = toDecimalString(p);
            return (
              <button
                type="button"
                key={value}
                className="btn btn-chip"
                aria-pressed={input === value}
                onClick={() => {
                  setInput(value);
                  setTouched(true);
                }}
              >
                {formatMoney(p)}
              </button>
            );
          })}
        </div>
      )}
      <p className="expiry-line">
        New expiry date: <strong>{formatDay(newExpiry)}</strong>
      </p>
      {checkout.isError && <ErrorState error={checkout.error} />}
      <div className="actions">
        <button type="submit" className="btn btn-primary" disabled={checkout.isPending || checkout.isSuccess}>
          {checkout.isPending || checkout.isSuccess ? 'Redirecting…' : 'Go to Checkout'}
        </button>
      </div>
    </form>
  );
}
