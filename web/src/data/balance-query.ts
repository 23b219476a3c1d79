import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** The organization's balance; short-polled so credits landing or being spent show within seconds. */
export function useBalanceQuery(org: string, pollMs = 5_000) {
  return useQuery({
    queryKey: keys.balance(org),
    queryFn: ({ signal }) =>
      unwrap(api.GET('/v1/orgs/{orgId}/balance', { params: { path: { orgId: org } }, signal })),
    enabled: org !== '',
    refetchInterval: pollMs,
    refetchOnWindowFocus: true,
  });
}
