import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatMoney } from '../src/money';

// pkg/money/testdata/format.json is shared with the Go formatter (pkg/money.Format, used by the
// emails and the test-mode checkout page): both must write every amount the same way.
interface SharedCase {
  currencyCode: string;
  units: string;
  nanos: number;
  want: string;
}
// Vitest runs in web/ (npm run test).
const cases = JSON.parse(
  readFileSync(resolve(process.cwd(), '../pkg/money/testdata/format.json'), 'utf8'),
) as SharedCase[];

describe('money formatting shared with the Go services', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThan(10);
  });
  it.each(cases)('$currencyCode $units + $nanos nanos → $want', (c) => {
    expect(formatMoney({ currencyCode: c.currencyCode, units: c.units, nanos: c.nanos })).toBe(c.want);
  });
});
