// Money: google.type.Money on the wire ({currencyCode, units: string int64, nanos: int32}).
// Every amount of the console is formatted and parsed here, with BigInt arithmetic only (no floats).
// Intl is asked for two things only: the currency's symbol and its number of minor digits.

export interface Money {
  currencyCode?: string;
  units?: string;
  nanos?: number;
}

const NANOS_PER_UNIT = 1_000_000_000n;
const FRACTION_DIGITS = 9;

/** The exact amount in nanos (1e-9 of the currency's unit). Missing fields are zero. */
export function toNanos(m: Money | undefined | null): bigint {
  if (!m) return 0n;
  const units = BigInt(m.units && m.units !== '' ? m.units : '0');
  const nanos = BigInt(m.nanos ?? 0);
  return units * NANOS_PER_UNIT + nanos;
}

/** A Money from an amount in nanos; units and nanos carry the same sign, as google.type.Money requires. */
export function fromNanos(total: bigint, currencyCode: string): Money {
  const units = total / NANOS_PER_UNIT; // BigInt division truncates toward zero
  const nanos = total - units * NANOS_PER_UNIT;
  return { currencyCode, units: units.toString(), nanos: Number(nanos) };
}

export function compareMoney(a: Money | undefined | null, b: Money | undefined | null): number {
  const x = toNanos(a);
  const y = toNanos(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function isZero(m: Money | undefined | null): boolean {
  return toNanos(m) === 0n;
}

export function addMoney(a: Money | undefined | null, b: Money | undefined | null, currencyCode: string): Money {
  return fromNanos(toNanos(a) + toNanos(b), currencyCode);
}

const minorCache = new Map<string, number>();

/** The currency's minor digits (USD 2, JPY 0, BHD 3), from Intl; 2 for an unknown code. */
export function minorDigits(currencyCode: string): number {
  const code = currencyCode.toUpperCase();
  const cached = minorCache.get(code);
  if (cached !== undefined) return cached;
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en-US', { style: 'currency', currency: code }).resolvedOptions()
      .maximumFractionDigits ?? 2;
  } catch {
    digits = 2;
  }
  minorCache.set(code, digits);
  return digits;
}

interface SymbolInfo {
  symbol: string;
  prefix: boolean;
  space: boolean;
}
const symbolCache = new Map<string, SymbolInfo>();

function symbolOf(currencyCode: string, locale: string): SymbolInfo {
  const key = `${locale}|${currencyCode}`;
  const cached = symbolCache.get(key);
  if (cached) return cached;
  let info: SymbolInfo = { symbol: currencyCode, prefix: false, space: true };
  try {
    // Only the parts are used: the currency symbol and on which side of the number it stands.
    const parts = new Intl.NumberFormat(locale, { style: 'currency', currency: currencyCode }).formatToParts(1);
    const idx = parts.findIndex((p) => p.type === 'currency');
    const firstNumber = parts.findIndex((p) => p.type === 'integer');
    if (idx >= 0) {
      const prefix = idx < firstNumber;
      const between = prefix ? parts.slice(idx + 1, firstNumber) : parts.slice(firstNumber + 1, idx);
      info = {
        symbol: parts[idx]!.value,
        prefix,
        space: between.some((p) => p.type === 'literal' && /\s/.test(p.value)),
      };
    }
  } catch {
    // unknown currency code: "12.00 XYZ"
  }
  symbolCache.set(key, info);
  return info;
}

function groupThousands(intPart: string): string {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export interface DecimalOptions {
  /** At least this many fraction digits (default: the currency's minor digits). */
  minFractionDigits?: number;
  /** Round half away from zero to this many digits (default: exact, up to 9). */
  maxFractionDigits?: number;
  /** Thousands separators (default false for decimal strings). */
  group?: boolean;
}

/** The exact decimal string of an amount: {units:"25", nanos:500000000} → "25.50" (USD). */
export function toDecimalString(m: Money | undefined | null, opts: DecimalOptions = {}): string {
  const code = m?.currencyCode || 'USD';
  const minFrac = opts.minFractionDigits ?? minorDigits(code);
  const maxFrac = Math.max(opts.maxFractionDigits ?? FRACTION_DIGITS, minFrac);
  let total = toNanos(m);
  const negative = total < 0n;
  if (negative) total = -total;
  if (maxFrac < FRACTION_DIGITS) {
    const step = 10n ** BigInt(FRACTION_DIGITS - maxFrac);
    const rem = total % step;
    total -= rem;
    if (rem * 2n >= step) total += step;
  }
  const intPart = (total / NANOS_PER_UNIT).toString();
  let frac = (total % NANOS_PER_UNIT).toString().padStart(FRACTION_DIGITS, '0');
  frac = frac.replace(/0+$/, '');
  if (frac.length < minFrac) frac = frac.padEnd(minFrac, '0');
  frac = frac.slice(0, maxFrac);
  const shown = opts.group ? groupThousands(intPart) : intPart;
  const body = frac.length > 0 ? `${shown}.${frac}` : shown;
  return negative && total !== 0n ? `-${body}` : body;
}

export interface FormatOptions {
  locale?: string;
  maxFractionDigits?: number;
  /** Show "+" on positive amounts (signed changes such as transactions). */
  signed?: boolean;
}

/** "$1,234.50", "-$0.0000015", "¥1,200": the amount with its currency symbol, exact by default. */
export function formatMoney(m: Money | undefined | null, opts: FormatOptions = {}): string {
  if (!m) return '—';
  const code = (m.currencyCode || 'USD').toUpperCase();
  const decimal = toDecimalString(m, { group: true, maxFractionDigits: opts.maxFractionDigits });
  const negative = decimal.startsWith('-');
  const abs = negative ? decimal.slice(1) : decimal;
  const sym = symbolOf(code, opts.locale ?? 'en-US');
  const sp = sym.space ? '\u00a0' : '';
  const withSymbol = sym.prefix ? `${sym.symbol}${sp}${abs}` : `${abs}${sp}${sym.symbol}`;
  if (negative) return `-${withSymbol}`;
  if (opts.signed && toNanos(m) > 0n) return `+${withSymbol}`;
  return withSymbol;
}

export type ParseResult = { ok: true; value: Money } | { ok: false; error: string };

export interface ParseOptions {
  /** Fraction digits accepted (default: the currency's minor digits; at most 9). */
  maxFractionDigits?: number;
  allowNegative?: boolean;
}

const INT64_MAX = 9_223_372_036_854_775_807n;

/** Parses what a person typed ("25", "25.5", "25.50", "-3.25") into an exact Money. */
export function parseMoney(input: string, currencyCode: string, opts: ParseOptions = {}): ParseResult {
  const text = input.trim();
  if (text === '') return { ok: false, error: 'Enter an amount.' };
  const maxFrac = Math.min(opts.maxFractionDigits ?? minorDigits(currencyCode), FRACTION_DIGITS);
  const match = /^([+-])?(\d+)(?:\.(\d*))?$|^([+-])?\.(\d+)$/.exec(text);
  if (!match) return { ok: false, error: 'Enter a number such as 25 or 25.50.' };
  const sign = match[1] ?? match[4] ?? '';
  const intDigits = match[2] ?? '0';
  const fracDigits = match[3] ?? match[5] ?? '';
  if (sign === '-' && !opts.allowNegative) return { ok: false, error: 'The amount must be positive.' };
  if (fracDigits.length > maxFrac) {
    return {
      ok: false,
      error: maxFrac === 0 ? 'Enter a whole amount.' : `Use at most ${maxFrac} decimal places.`,
    };
  }
  const units = BigInt(intDigits);
  if (units > INT64_MAX) return { ok: false, error: 'The amount is too large.' };
  const nanos = BigInt(fracDigits.padEnd(FRACTION_DIGITS, '0') || '0');
  let total = units * NANOS_PER_UNIT + nanos;
  if (sign === '-') total = -total;
  return { ok: true, value: fromNanos(total, currencyCode.toUpperCase()) };
}
