// Shapes the usage summary for the chart, the table and the CSV; amounts stay exact Money here.
import type { ResponseOf } from '../api/types';
import { fromNanos, toDecimalString, toNanos, type Money } from '../money';

export type UsageSummary = ResponseOf<'/v1/orgs/{orgId}/usage-summary', 'get'>;
export type UsageKind = 'model' | 'instance';

export interface UsageRow {
  day: string;
  amounts: Record<string, Money>;
  total: Money;
}

/** The ids of a kind, biggest spend first. */
export function seriesIds(summary: UsageSummary, kind: UsageKind): string[] {
  return (summary.totals ?? [])
    .filter((t) => t.kind === kind)
    .sort((a, b) => {
      const x = toNanos(a.amount);
      const y = toNanos(b.amount);
      return x === y ? (a.id ?? '').localeCompare(b.id ?? '') : x > y ? -1 : 1;
    })
    .map((t) => t.id ?? '');
}

/** One row per day (every day of the window), with the spend of each id of the kind. */
export function usageRows(summary: UsageSummary, kind: UsageKind): UsageRow[] {
  const currency = summary.currencyCode || 'USD';
  return (summary.days ?? []).map((d) => {
    const amounts: Record<string, Money> = {};
    let total = 0n;
    for (const item of d.items ?? []) {
      if (item.kind !== kind) continue;
      const id = item.id ?? '';
      const sum = toNanos(amounts[id]) + toNanos(item.amount);
      amounts[id] = fromNanos(sum, currency);
      total += toNanos(item.amount);
    }
    return { day: d.day ?? '', amounts, total: fromNanos(total, currency) };
  });
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** day,kind,id,amount,currency,count — one line per day and item, amounts as exact decimals. */
export function usageCsv(summary: UsageSummary): string {
  const currency = summary.currencyCode || 'USD';
  const lines = ['day,kind,id,amount,currency,count'];
  for (const d of summary.days ?? []) {
    for (const item of d.items ?? []) {
      lines.push(
        [
          d.day ?? '',
          item.kind ?? '',
          item.id ?? '',
          toDecimalString(item.amount ?? { currencyCode: currency }),
          item.amount?.currencyCode || currency,
          String(item.count ?? '0'),
        ]
          .map(csvField)
          .join(','),
      );
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}
