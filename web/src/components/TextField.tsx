import { useId } from 'react';

// TextField is one labelled input of a form: its error (role=alert, tied to the input by
// aria-describedby) replaces its hint while there is one.
export function TextField({
  label,
  value,
  onChange,
  error,
  hint,
  inputMode,
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  error: string;
  hint?: string;
  inputMode?: 'decimal' | 'numeric';
}) {
  const id = useId();
  const errId = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        inputMode={inputMode}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error !== ''}
        aria-describedby={error !== '' ? errId : undefined}
      />
      {error !== '' ? (
        <p id={errId} className="field-error" role="alert">
          {error}
        </p>
      ) : (
        hint !== undefined && <p className="hint">{hint}</p>
      )}
    </div>
  );
}
