import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** The signed-in member's notification settings in their organization. */
export function useNotificationSettingsQuery(org: string) {
  return useQuery({
    queryKey: keys.notificationSettings(org),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/orgs/{orgId}/members/{memberId}/notification-settings', {
          params: { path: { orgId: org, memberId: 'me' } },
          signal,
        }),
      ),
    enabled: org !== '',
  });
}
