import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** The organization's saved card and auto-recharge rule (members read them). */
export function useAutoRechargeQuery(org: string) {
  return useQuery({
    queryKey: keys.autoRecharge(org),
    queryFn: ({ signal }) =>
      unwrap(api.GET('/v1/orgs/{orgId}/auto-recharge', { params: { path: { orgId: org } }, signal })),
    enabled: org !== '',
  });
}
