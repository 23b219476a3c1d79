// The stacked bar chart of the Usage page; loaded on demand (Recharts stays out of the initial JS).
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatIsoDay } from '../dates';
import { formatMoney, fromNanos, minorDigits, toNanos } from '../money';
import type { UsageRow } from './usage-data';

const COLORS = ['#2f5bd3', '#d9822b', '#2e9e6b', '#a23fc4', '#c23b3b', '#1f8a99', '#7a6f2a', '#5c5c5c'];

export default function UsageChart({ rows, ids, currency }: { rows: UsageRow[]; ids: string[]; currency: string }) {
  // Bar heights need numbers; they are drawn from nanos and never shown: every amount a person reads
  // (tooltip, axis) is formatted from the exact Money.
  const data = rows.map((r) => {
    const point: Record<string, number | string> = { day: r.day };
    for (const id of ids) point[id] = Number(toNanos(r.amounts[id]));
    return point;
  });
  const fromNanosText = (n: number) =>
    formatMoney(fromNanos(BigInt(Math.round(n)), currency), { maxFractionDigits: minorDigits(currency) });
  return (
    // The table below the chart carries the same numbers for keyboard and screen-reader users.
    <div className="chart" aria-hidden="true">
      <ResponsiveContainer width="100%" height={300}>
        <BarChart data={data} margin={{ top: 8, right: 8, bottom: 8, left: 8 }} accessibilityLayer={false}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="day" tickFormatter={(d: string) => formatIsoDay(d)} minTickGap={16} />
          <YAxis tickFormatter={fromNanosText} width={64} />
          <Tooltip
            labelFormatter={(d) => formatIsoDay(String(d))}
            formatter={(_value, name, item) => {
              const row = rows.find((r) => r.day === (item.payload as { day: string }).day);
              return [formatMoney(row?.amounts[String(name)] ?? { currencyCode: currency }), String(name)];
            }}
          />
          <Legend />
          {ids.map((id, i) => (
            <Bar key={id} dataKey={id} stackId="spend" fill={COLORS[i % COLORS.length]} isAnimationActive={false} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
