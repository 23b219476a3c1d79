import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { AdjustRequest } from '../api/types';

/** An audited, signed correction of an organization's balance; idempotent per key. */
export function useAdjustmentMutation() {
  return useMutation({
    mutationFn: ({ org, body }: { org: string; body: AdjustRequest }) =>
      unwrap(api.POST('/v1/orgs/{orgId}/adjustments', { params: { path: { orgId: org } }, body })),
  });
}
