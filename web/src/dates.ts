// Dates shown in the console: the day in the viewer's calendar, "Dec 1, 2026".
const dayFmt = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'short', day: 'numeric' });
const dateTimeFmt = new Intl.DateTimeFormat('en-US', {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
});

function parse(value: string | Date | undefined | null): Date | null {
  if (!value) return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function formatDay(value: string | Date | undefined | null): string {
  const d = parse(value);
  return d ? dayFmt.format(d) : '—';
}

export function formatDateTime(value: string | Date | undefined | null): string {
  const d = parse(value);
  return d ? dateTimeFmt.format(d) : '—';
}

/** A calendar day "2026-11-30" (a usage-summary day) shown as "Nov 30", without time-zone shifts. */
export function formatIsoDay(day: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return day;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(d);
}

/** The same day `months` calendar months later (Jan 31 + 1 → Feb 28/29), as the ledger renews validity. */
export function addMonths(from: Date, months: number): Date {
  const d = new Date(from.getTime());
  const day = d.getDate();
  d.setDate(1);
  d.setMonth(d.getMonth() + months);
  const last = new Date(d.getFullYear(), d.getMonth() + 1, 0).getDate();
  d.setDate(Math.min(day, last));
  return d;
}
