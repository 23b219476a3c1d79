import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

export function useBillingProfileQuery(org: string) {
  return useQuery({
    queryKey: keys.billingProfile(org),
    queryFn: ({ signal }) =>
      unwrap(api.GET('/v1/orgs/{orgId}/billing-profile', { params: { path: { orgId: org } }, signal })),
    enabled: org !== '',
  });
}
