import { useState, type FormEvent } from 'react';
import { hasRole } from '../auth/me';
import { useMe } from '../auth/session';
import { useProjectLimitsQuery } from '../data/project-limits-query';
import { useProjectLimitUpdateMutation } from '../data/project-limit-update-mutation';
import type { ProjectLimitStatus } from '../api/types';
import { formatMoney, isZero, parseMoney, type Money } from '../money';
import { QueryView } from './states';
import { FormActions } from './FormActions';
import { TextField } from './TextField';

/** Settings → Limits → Per-project limits: a monthly cap per project tag of the debits. */
export function ProjectLimits({ org, currency }: { org: string; currency: string }) {
  const query = useProjectLimitsQuery(org);
  const me = useMe();
  const isAdmin = hasRole(me, 'admin');
  return (
    <div className="stack" aria-labelledby="project-limits-h" role="group">
      <h3 id="project-limits-h">Per-project limits</h3>
      <p className="hint">
        A project limit caps the monthly charges of calls tagged with that project. Once it is reached, new calls of the
        project are refused; other projects are not affected.
      </p>
      <QueryView query={query} label="Loading project limits…">
        {(data) => <ProjectTable org={org} rows={data.projectLimits ?? []} isAdmin={isAdmin} />}
      </QueryView>
      {isAdmin ? (
        <ProjectLimitForm org={org} currency={currency} />
      ) : (
        <p className="hint">Only admins of your organization can change project limits.</p>
      )}
    </div>
  );
}

function ProjectTable({ org, rows, isAdmin }: { org: string; rows: ProjectLimitStatus[]; isAdmin: boolean }) {
  const remove = useProjectLimitUpdateMutation(org);
  if (rows.length === 0) return <p data-testid="no-project-limits">No project has a limit.</p>;
  return (
    <table className="table" aria-label="Project limits">
      <thead>
        <tr>
          <th scope="col">Project</th>
          <th scope="col">Monthly limit</th>
          <th scope="col">Spent this month</th>
          <th scope="col">Remaining</th>
          {isAdmin && (
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          )}
        </tr>
      </thead>
      <tbody>
        {rows.map((p) => (
          <tr key={p.project} data-testid={`project-limit-${p.project ?? ''}`}>
            <td>{p.project}</td>
            <td>{formatMoney(p.limit)}</td>
            <td>{formatMoney(p.monthSpend)}</td>
            <td>{p.reached ? 'Limit reached' : formatMoney(p.remaining)}</td>
            {isAdmin && (
              <td>
                <button
                  type="button"
                  className="btn"
                  aria-label={`Remove the limit of ${p.project ?? ''}`}
                  disabled={remove.isPending}
                  onClick={() =>
                    remove.mutate({
                      project: p.project ?? '',
                      body: { limit: { currencyCode: p.limit?.currencyCode ?? 'USD', units: '0', nanos: 0 } },
                    })
                  }
                >
                  Remove
                </button>
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ProjectLimitForm({ org, currency }: { org: string; currency: string }) {
  const save = useProjectLimitUpdateMutation(org);
  const [project, setProject] = useState('');
  const [limit, setLimit] = useState('');
  const [projectError, setProjectError] = useState('');
  const [limitError, setLimitError] = useState('');

  const submit = (e: FormEvent) => {
    e.preventDefault();
    save.reset();
    const name = project.trim();
    const pErr = name === '' ? 'Enter the project tag.' : new TextEncoder().encode(name).length > 128 ? 'Use at most 128 bytes.' : '';
    let lErr = '';
    let amount: Money = { currencyCode: currency, units: '0', nanos: 0 };
    const parsed = parseMoney(limit, currency);
    if (limit.trim() === '') lErr = 'Enter a monthly limit.';
    else if (!parsed.ok) lErr = parsed.error;
    else if (isZero(parsed.value)) lErr = 'Enter a limit above zero (remove a limit with its Remove button).';
    else amount = parsed.value;
    setProjectError(pErr);
    setLimitError(lErr);
    if (pErr !== '' || lErr !== '') return;
    save.mutate({ project: name, body: { limit: amount } });
  };

  return (
    <form className="stack form-narrow" onSubmit={submit} noValidate aria-label="Project limit">
      <TextField
        label="Project"
        value={project}
        onChange={(v) => {
          save.reset();
          setProject(v);
        }}
        error={projectError}
        hint={'The "project" tag your calls carry.'}
      />
      <TextField
        label={`Project monthly limit (${currency})`}
        value={limit}
        onChange={(v) => {
          save.reset();
          setLimit(v);
        }}
        error={limitError}
        inputMode="decimal"
      />
      <FormActions
        mutation={save}
        success={save.isSuccess && save.data?.projectLimit?.project && `Limit of ${save.data.projectLimit.project} saved.`}
        submit={save.isPending ? 'Saving…' : 'Save project limit'}
      />
    </form>
  );
}
