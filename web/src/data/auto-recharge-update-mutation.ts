import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { AutoRechargeRule } from '../api/types';
import { keys } from './keys';

/** Replaces the organization's auto-recharge rule (admins). */
export function useAutoRechargeUpdateMutation(org: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (rule: AutoRechargeRule) =>
      unwrap(
        api.PUT('/v1/orgs/{orgId}/auto-recharge', {
          params: { path: { orgId: org } },
          body: rule,
        }),
      ),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.autoRecharge(org) }),
  });
}
