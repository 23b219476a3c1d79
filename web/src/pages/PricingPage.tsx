import { useId, useState, type FormEvent, type ReactNode } from 'react';
import { useModelPricesQuery } from '../data/model-prices-query';
import { useInstancePricesQuery } from '../data/instance-prices-query';
import { useQuoteMutation } from '../data/quote-mutation';
import type { ModelPrice } from '../api/types';
import { formatMoney } from '../money';
import { formatDay } from '../dates';
import { labels, unitLabel } from '../components/labels';
import { EmptyState, ErrorState, QueryView } from '../components/states';
import { Table } from '../components/PagedList';
import { hardware } from './InstancesPage';

function perText(per: string | number | undefined): string {
  const n = String(per ?? '1');
  return n.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function dimensionText(d: NonNullable<ModelPrice['dimensions']>[number]): string {
  const per = String(d.per ?? '1');
  const unit = unitLabel(d.unit);
  if (per === '1') return `${formatMoney(d.price)} per ${unit.replace(/s$/, '')}`;
  return `${formatMoney(d.price)} per ${perText(per)} ${unit}`;
}

/** Scheduled price versions, one line each. */
export function ScheduledVersions<T extends { versionId?: string }>({ versions, text }: { versions: T[]; text: (v: T) => ReactNode }) {
  return (
    <ul>
      {versions.map((v) => (
        <li key={v.versionId}>{text(v)}</li>
      ))}
    </ul>
  );
}

/** The scheduled versions under their heading; nothing when none is scheduled. */
function ScheduledChanges<T extends { versionId?: string }>({
  title,
  versions,
  text,
}: {
  title: string;
  versions: T[] | undefined;
  text: (v: T) => ReactNode;
}) {
  if (!versions || versions.length === 0) return null;
  return (
    <>
      <h3>{title}</h3>
      <ScheduledVersions versions={versions} text={text} />
    </>
  );
}

export function PricingPage() {
  return (
    <>
      <h1>Pricing</h1>
      <ModelPrices />
      <InstancePrices />
      <QuoteCalculator />
    </>
  );
}

function ModelPrices() {
  const query = useModelPricesQuery();
  return (
    <section aria-labelledby="models-h">
      <h2 id="models-h">Models</h2>
      <QueryView query={query} label="Loading model prices…">
        {(data) => {
          const models = data.models ?? [];
          if (models.length === 0) return <EmptyState>No model is priced yet.</EmptyState>;
          return (
            <>
              <Table
                label="Model prices table"
                columns={[{ label: 'Model' }, { label: 'Type' }, { label: 'Price' }, { label: 'Effective from' }]}
                items={models}
                row={(m) => (
                  <tr key={m.modelId}>
                    <th scope="row">
                      {m.displayName || m.modelId}
                      {m.displayName && <div className="muted small">{m.modelId}</div>}
                    </th>
                    <td>{labels.modality(m.modality)}</td>
                    <td>
                      <ul className="plain">
                        {(m.dimensions ?? []).map((d) => (
                          <li key={d.unit}>{dimensionText(d)}</li>
                        ))}
                      </ul>
                    </td>
                    <td>{formatDay(m.effectiveFrom)}</td>
                  </tr>
                )}
              />
              <ScheduledChanges
                title="Scheduled model price changes"
                versions={data.scheduled}
                text={(m) => (
                  <>
                    {m.displayName || m.modelId}, from {formatDay(m.effectiveFrom)}: {(m.dimensions ?? []).map(dimensionText).join('; ')}
                  </>
                )}
              />
            </>
          );
        }}
      </QueryView>
    </section>
  );
}

function InstancePrices() {
  const query = useInstancePricesQuery();
  return (
    <section aria-labelledby="inst-h">
      <h2 id="inst-h">Instances</h2>
      <QueryView query={query} label="Loading instance prices…">
        {(data) => {
          const list = data.instances ?? [];
          if (list.length === 0) return <EmptyState>No instance type is priced yet.</EmptyState>;
          return (
            <>
              <Table
                label="Instance prices table"
                columns={[{ label: 'Instance type' }, { label: 'Hardware' }, { label: 'Price per hour', num: true }, { label: 'Effective from' }]}
                items={list}
                row={(i) => (
                  <tr key={i.instanceTypeId}>
                    <th scope="row">{i.instanceTypeId}</th>
                    <td>{hardware(i)}</td>
                    <td className="num">{formatMoney(i.hourlyPrice)}</td>
                    <td>{formatDay(i.effectiveFrom)}</td>
                  </tr>
                )}
              />
              <ScheduledChanges
                title="Scheduled instance price changes"
                versions={data.scheduled}
                text={(i) => (
                  <>
                    {i.instanceTypeId}, from {formatDay(i.effectiveFrom)}: {formatMoney(i.hourlyPrice)} per hour
                  </>
                )}
              />
            </>
          );
        }}
      </QueryView>
    </section>
  );
}

const QUANTITY = /^\d+(\.\d{1,9})?$/;

function QuoteCalculator() {
  const models = useModelPricesQuery();
  const quote = useQuoteMutation();
  const [modelId, setModelId] = useState('');
  const [quantities, setQuantities] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const selectId = useId();
  const list = models.data?.models ?? [];
  const model = list.find((m) => m.modelId === modelId) ?? list[0];

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!model?.modelId) return;
    const usage: Record<string, string> = {};
    for (const d of model.dimensions ?? []) {
      const q = (quantities[d.unit ?? ''] ?? '').trim();
      if (q === '') continue;
      if (!QUANTITY.test(q)) {
        setError(`Enter ${unitLabel(d.unit)} as a number such as 1200 or 12.5.`);
        return;
      }
      usage[d.unit ?? ''] = q;
    }
    if (Object.keys(usage).length === 0) {
      setError('Enter a quantity for at least one unit.');
      return;
    }
    setError('');
    quote.mutate({ modelId: model.modelId, usage });
  };

  return (
    <section aria-labelledby="quote-h">
      <h2 id="quote-h">Quote calculator</h2>
      {models.isError ? (
        <ErrorState error={models.error} />
      ) : list.length === 0 ? (
        <EmptyState>{models.isPending ? 'Loading models…' : 'No model to quote.'}</EmptyState>
      ) : (
        <form className="stack form-narrow" onSubmit={submit} noValidate>
          <div className="field">
            <label htmlFor={selectId}>Model</label>
            <select
              id={selectId}
              value={model?.modelId ?? ''}
              onChange={(e) => {
                setModelId(e.target.value);
                setQuantities({});
                quote.reset();
              }}
            >
              {list.map((m) => (
                <option key={m.modelId} value={m.modelId}>
                  {m.displayName || m.modelId}
                </option>
              ))}
            </select>
          </div>
          {(model?.dimensions ?? []).map((d) => (
            <div className="field" key={d.unit}>
              <label htmlFor={`q-${d.unit}`}>Quantity of {unitLabel(d.unit)}</label>
              <input
                id={`q-${d.unit}`}
                inputMode="decimal"
                value={quantities[d.unit ?? ''] ?? ''}
                onChange={(e) => setQuantities((q) => ({ ...q, [d.unit ?? '']: e.target.value }))}
              />
              <p className="hint">{dimensionText(d)}</p>
            </div>
          ))}
          {error !== '' && (
            <p className="field-error" role="alert">
              {error}
            </p>
          )}
          {quote.isError && <ErrorState error={quote.error} />}
          <div className="actions">
            <button type="submit" className="btn btn-primary" disabled={quote.isPending}>
              Get quote
            </button>
          </div>
          {quote.data && (
            <div className="quote" role="status" aria-live="polite">
              <ul className="plain">
                {(quote.data.lines ?? []).map((l) => (
                  <li key={l.unit}>
                    {l.quantity} {unitLabel(l.unit)}: {formatMoney(l.amount)}
                  </li>
                ))}
              </ul>
              <p>
                Total: <strong>{formatMoney(quote.data.total)}</strong>
              </p>
            </div>
          )}
        </form>
      )}
    </section>
  );
}
