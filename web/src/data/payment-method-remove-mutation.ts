import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** Forgets the organization's saved card (admins). */
export function usePaymentMethodRemoveMutation(org: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: () =>
      unwrap(api.DELETE('/v1/orgs/{orgId}/payment-method', { params: { path: { orgId: org } } })),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.autoRecharge(org) }),
  });
}
