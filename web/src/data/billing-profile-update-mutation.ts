import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { BillingProfile } from '../api/types';
import { keys } from './keys';

/** Replaces the details printed on the organization's invoices (admins). */
export function useBillingProfileUpdateMutation(org: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (profile: BillingProfile) =>
      unwrap(
        api.PUT('/v1/orgs/{orgId}/billing-profile', {
          params: { path: { orgId: org } },
          body: profile,
        }),
      ),
    onSuccess: (data) => qc.setQueryData(keys.billingProfile(org), data),
  });
}
