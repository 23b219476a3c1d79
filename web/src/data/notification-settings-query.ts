import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** The signed-in member's notification settings in their organization. */
export function useNotificationSettingsQuery(org: string) {
  return useQuery({
    queryKey: keys.notificationSettings(org),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/orgs/{org_id}/members/{member_id}/notification-settings', {
          params: { path: { org_id: org, member_id: 'me' } },
          signal,
        }),
      ),
    enabled: org !== '',
  });
}
