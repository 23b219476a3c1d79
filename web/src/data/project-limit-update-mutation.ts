import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { ProjectLimitRequest } from '../api/types';
import { keys } from './keys';

/** Sets or removes (a zero limit) one project's monthly limit (admins). */
export function useProjectLimitUpdateMutation(org: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ project, body }: { project: string; body: ProjectLimitRequest }) =>
      unwrap(api.PUT('/v1/orgs/{orgId}/project-limits/{project}', { params: { path: { orgId: org, project } }, body })),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.projectLimits(org) }),
  });
}
