import { useId } from 'react';

export interface FilterOption<V extends string> {
  value: V;
  label: string;
}

/** A labelled select that filters a list (the list goes back to its first page on a change). */
export function FilterSelect<V extends string>({
  label,
  value,
  options,
  onChange,
}: {
  label: string;
  value: V;
  options: FilterOption<V>[];
  onChange: (value: V) => void;
}) {
  const id = useId();
  return (
    <div className="field field-inline">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(e) => onChange(e.target.value as V)}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}
