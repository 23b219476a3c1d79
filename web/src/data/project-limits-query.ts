import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** The organization's per-project monthly limits and what each project was charged this month (UTC). */
export function useProjectLimitsQuery(org: string) {
  return useQuery({
    queryKey: keys.projectLimits(org),
    queryFn: ({ signal }) =>
      unwrap(api.GET('/v1/orgs/{orgId}/project-limits', { params: { path: { orgId: org } }, signal })),
    enabled: org !== '',
  });
}
