import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';

/** Starts saving a card (admins); the caller sends the browser to the returned URL. */
export function usePaymentMethodSetupMutation(org: string) {
  return useMutation({
    mutationFn: () =>
      unwrap(
        api.POST('/v1/orgs/{orgId}/payment-method/setup', {
          params: { path: { orgId: org } },
          body: {},
        }),
      ),
  });
}
