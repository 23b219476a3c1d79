import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

export const RENTALS_PAGE_SIZE = 25;

export function useRentalsQuery(org: string, pageToken: string) {
  return useQuery({
    queryKey: keys.rentals(org, pageToken),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/orgs/{orgId}/rentals', {
          params: { path: { orgId: org }, query: { pageSize: RENTALS_PAGE_SIZE, pageToken } },
          signal,
        }),
      ),
    enabled: org !== '',
    placeholderData: keepPreviousData,
    refetchInterval: 30_000,
  });
}
