// What the console should show for an API value, computed independently of the console's code:
// US dollars from integer nanos ("$25.00", cents rounded away from nothing, since amounts in the
// suite are whole cents) and days in en-US ("Mar 1, 2027", UTC like the browser context).

export function usd(nanos: bigint): string {
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  const cents = abs / 10_000_000n;
  const whole = (cents / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const frac = (cents % 100n).toString().padStart(2, '0');
  return `${negative ? '-' : ''}$${whole}.${frac}`;
}

/** Integer nanos as a plain decimal with cents ("6.30"), for CSV and form values. */
export function decimal(nanos: bigint): string {
  return usd(nanos).replace('$', '').replaceAll(',', '');
}

const dayFmt = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });

export function day(iso: string | Date): string {
  return dayFmt.format(typeof iso === 'string' ? new Date(iso) : iso);
}

/** The date `months` calendar months after from (UTC), as the ledger renews validity. */
export function addMonthsUTC(from: Date, months: number): Date {
  const d = new Date(from.getTime());
  const dayOfMonth = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(dayOfMonth, last));
  return d;
}
