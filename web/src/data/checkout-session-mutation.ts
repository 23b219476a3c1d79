import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { Money } from '../money';

/** Starts a top-up; the caller sends the browser to the returned checkout URL. */
export function useCheckoutSessionMutation(org: string) {
  return useMutation({
    mutationFn: (amount: Money) =>
      unwrap(
        api.POST('/v1/orgs/{orgId}/checkout-sessions', {
          params: { path: { orgId: org } },
          body: { amount },
        }),
      ),
  });
}
