import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** Credits consumed per day, by model and by instance type. */
export function useUsageSummaryQuery(org: string, days = 30) {
  return useQuery({
    queryKey: keys.usageSummary(org, days),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/orgs/{orgId}/usage-summary', {
          params: { path: { orgId: org }, query: { days } },
          signal,
        }),
      ),
    enabled: org !== '',
  });
}
