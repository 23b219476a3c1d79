import type { ReactNode } from 'react';
import { ErrorState } from './states';

/**
 * The end of a form that saves through a mutation: the mutation's error, the success message
 * (when there is one) and the submit button, disabled while the mutation runs.
 */
export function FormActions({
  mutation,
  success,
  submit,
}: {
  mutation: { isError: boolean; error: unknown; isPending: boolean };
  success?: ReactNode;
  submit: string;
}) {
  return (
    <>
      {mutation.isError && <ErrorState error={mutation.error} />}
      {success && (
        <p className="banner banner-success" role="status">
          {success}
        </p>
      )}
      <div className="actions">
        <button type="submit" className="btn btn-primary" disabled={mutation.isPending}>
          {submit}
        </button>
      </div>
    </>
  );
}
