import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/**
 * The signed-in member's notification settings in their organization. The header reads them on
 * every page (BalanceMenu), which is also how the notifications service learns the member, their
 * email and whether they are an admin (its member directory, refreshed at each call): the admins
 * it emails about a failed auto-recharge are the ones who have opened the console.
 */
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
