import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { CreditRequest } from '../api/types';

/** Free credits granted by ops (a ledger credit with source GRANT); idempotent per key. */
export function useGrantMutation() {
  return useMutation({
    mutationFn: ({ org, body }: { org: string; body: CreditRequest }) =>
      unwrap(api.POST('/v1/orgs/{orgId}/credits', { params: { path: { orgId: org } }, body })),
  });
}
