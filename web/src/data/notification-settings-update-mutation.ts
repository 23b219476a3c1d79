import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { NotificationSettings } from '../api/types';
import { keys } from './keys';

export function useNotificationSettingsUpdateMutation(org: string) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (settings: NotificationSettings) =>
      unwrap(
        api.PUT('/v1/orgs/{orgId}/members/{memberId}/notification-settings', {
          params: { path: { orgId: org, memberId: 'me' } },
          body: settings,
        }),
      ),
    onSuccess: (data) => qc.setQueryData(keys.notificationSettings(org), data),
  });
}
