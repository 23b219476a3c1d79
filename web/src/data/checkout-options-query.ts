import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** Min, max, presets and validity of a top-up, as CreateCheckoutSession enforces them. */
export function useCheckoutOptionsQuery(org: string, enabled = true) {
  return useQuery({
    queryKey: keys.checkoutOptions(org),
    queryFn: ({ signal }) =>
      unwrap(api.GET('/v1/orgs/{orgId}/checkout-options', { params: { path: { orgId: org } }, signal })),
    enabled: enabled && org !== '',
    staleTime: 5 * 60_000,
  });
}
