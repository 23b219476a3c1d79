import { describe, expect, it } from 'vitest';
import { compareMoney, formatMoney, fromNanos, parseMoney, toDecimalString, toNanos, type Money } from './money';

const m = (currencyCode: string, units: string, nanos = 0): Money => ({ currencyCode, units, nanos });

describe('formatMoney', () => {
  const cases: { name: string; in: Money | undefined; opts?: Parameters<typeof formatMoney>[1]; want: string }[] = [
    { name: 'whole dollars', in: m('USD', '25'), want: '$25.00' },
    { name: 'cents', in: m('USD', '25', 500_000_000), want: '$25.50' },
    { name: 'zero', in: m('USD', '0'), want: '$0.00' },
    { name: 'missing fields', in: { currencyCode: 'USD' }, want: '$0.00' },
    { name: 'sub-cent price keeps every digit', in: m('USD', '0', 1_500), want: '$0.0000015' },
    { name: 'one nano', in: m('USD', '0', 1), want: '$0.000000001' },
    { name: 'negative', in: m('USD', '-3', -250_000_000), want: '-$3.25' },
    { name: 'negative nanos only', in: m('USD', '0', -10_000_000), want: '-$0.01' },
    { name: 'thousands', in: m('USD', '1234567', 890_000_000), want: '$1,234,567.89' },
    {
      name: 'int64 max units',
      in: m('USD', '9223372036854775807', 999_999_999),
      want: '$9,223,372,036,854,775,807.999999999',
    },
    { name: 'int64 min units', in: m('USD', '-9223372036854775808'), want: '-$9,223,372,036,854,775,808.00' },
    { name: 'euro', in: m('EUR', '10', 50_000_000), want: '€10.05' },
    { name: 'yen has no minor digits', in: m('JPY', '1200'), want: '¥1,200' },
    { name: 'dinar has three', in: m('BHD', '1', 5_000_000), opts: {}, want: 'BHD\u00a01.005' },
    { name: 'rounded to cents half up', in: m('USD', '24', 995_000_000), opts: { maxFractionDigits: 2 }, want: '$25.00' },
    { name: 'rounded negative', in: m('USD', '-1', -5_000_000), opts: { maxFractionDigits: 2 }, want: '-$1.01' },
    { name: 'signed positive', in: m('USD', '5'), opts: { signed: true }, want: '+$5.00' },
    { name: 'signed negative', in: m('USD', '-5'), opts: { signed: true }, want: '-$5.00' },
    { name: 'undefined', in: undefined, want: '—' },
  ];
  it.each(cases)('$name', ({ in: input, opts, want }) => {
    expect(formatMoney(input, opts)).toBe(want);
  });
});

describe('toDecimalString', () => {
  it.each([
    [m('USD', '25', 500_000_000), '25.50'],
    [m('USD', '-0', -1), '-0.000000001'],
    [m('JPY', '7'), '7'],
    [m('USD', '9223372036854775807', 999_999_999), '9223372036854775807.999999999'],
  ])('%o → %s', (input, want) => {
    expect(toDecimalString(input)).toBe(want);
  });
});

describe('parseMoney', () => {
  const ok: [string, string, Money][] = [
    ['25', 'USD', m('USD', '25', 0)],
    ['25.5', 'USD', m('USD', '25', 500_000_000)],
    ['25.50', 'USD', m('USD', '25', 500_000_000)],
    [' 0.01 ', 'USD', m('USD', '0', 10_000_000)],
    ['.75', 'USD', m('USD', '0', 750_000_000)],
    ['1200', 'JPY', m('JPY', '1200', 0)],
    ['9223372036854775807', 'USD', m('USD', '9223372036854775807', 0)],
  ];
  it.each(ok)('%s %s', (input, cc, want) => {
    expect(parseMoney(input, cc)).toEqual({ ok: true, value: want });
  });

  it('parses negatives when allowed, with units and nanos of one sign', () => {
    expect(parseMoney('-12.345', 'USD', { allowNegative: true, maxFractionDigits: 9 })).toEqual({
      ok: true,
      value: m('USD', '-12', -345_000_000),
    });
    expect(parseMoney('-0.5', 'USD', { allowNegative: true })).toEqual({ ok: true, value: m('USD', '0', -500_000_000) });
  });

  const bad: [string, string, string][] = [
    ['', 'USD', 'Enter an amount.'],
    ['abc', 'USD', 'Enter a number such as 25 or 25.50.'],
    ['1,000', 'USD', 'Enter a number such as 25 or 25.50.'],
    ['1e3', 'USD', 'Enter a number such as 25 or 25.50.'],
    ['25.505', 'USD', 'Use at most 2 decimal places.'],
    ['12.5', 'JPY', 'Enter a whole amount.'],
    ['-5', 'USD', 'The amount must be positive.'],
    ['9223372036854775808', 'USD', 'The amount is too large.'],
  ];
  it.each(bad)('rejects %j (%s)', (input, cc, error) => {
    expect(parseMoney(input, cc)).toEqual({ ok: false, error });
  });

  it('round-trips through the formatter', () => {
    for (const text of ['0.01', '19.99', '1000000.10', '123456789012.34']) {
      const r = parseMoney(text, 'USD');
      if (!r.ok) throw new Error(r.error);
      expect(toDecimalString(r.value)).toBe(text);
    }
  });
});

describe('arithmetic', () => {
  it('compares exactly beyond float precision', () => {
    const a = m('USD', '9007199254740993', 0);
    const b = m('USD', '9007199254740992', 999_999_999);
    expect(compareMoney(a, b)).toBe(1);
    expect(compareMoney(b, a)).toBe(-1);
    expect(compareMoney(a, a)).toBe(0);
  });
  it('fromNanos keeps signs together', () => {
    expect(fromNanos(-1_500_000_000n, 'USD')).toEqual(m('USD', '-1', -500_000_000));
    expect(toNanos(fromNanos(123_456_789_123n, 'USD'))).toBe(123_456_789_123n);
  });
});
