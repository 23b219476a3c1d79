import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { SpendLimitRequest } from '../api/types';
import { keys } from './keys';

/** Replaces the organization's monthly spend limit (admins). */
export function useSpendLimitUpdateMutation(org: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: SpendLimitRequest) =>
      unwrap(api.PUT('/v1/orgs/{orgId}/spend-limit', { params: { path: { orgId: org } }, body })),
    onSuccess: (data) => qc.setQueryData(keys.spendLimit(org), data),
  });
}
