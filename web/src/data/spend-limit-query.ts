import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** The organization's monthly spend limit and what it was charged this month (UTC). */
export function useSpendLimitQuery(org: string) {
  return useQuery({
    queryKey: keys.spendLimit(org),
    queryFn: ({ signal }) =>
      unwrap(api.GET('/v1/orgs/{orgId}/spend-limit', { params: { path: { orgId: org } }, signal })),
    enabled: org !== '',
  });
}
