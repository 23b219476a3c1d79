import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

export function useDeliveriesQuery(status: string, pageToken: string) {
  return useQuery({
    queryKey: keys.deliveries(status, pageToken),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/notifications/deliveries', {
          params: {
            query: {
              pageToken,
              pageSize: 50,
              ...(status !== '' ? { status: status as never } : {}),
            },
          },
          signal,
        }),
      ),
    placeholderData: keepPreviousData,
  });
}
