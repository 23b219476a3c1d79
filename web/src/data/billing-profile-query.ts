import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

export function useBillingProfileQuery(org: string) {
  return useQuery({
    queryKey: keys.billingProfile(org),
    queryFn: ({ signal }) =>
      unwrap(api.GET('/v1/orgs/{org_id}/billing-profile', { params: { path: { org_id: org } }, signal })),
    enabled: org !== '',
  });
}
