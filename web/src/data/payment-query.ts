import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** One payment with its refunds (and their credit notes). */
export function usePaymentQuery(org: string, paymentId: string, enabled: boolean) {
  return useQuery({
    queryKey: keys.payment(org, paymentId),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/orgs/{orgId}/payments/{paymentId}', {
          params: { path: { orgId: org, paymentId } },
          signal,
        }),
      ),
    enabled: enabled && org !== '' && paymentId !== '',
  });
}
