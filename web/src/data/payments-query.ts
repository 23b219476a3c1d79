import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

export const PAYMENTS_PAGE_SIZE = 20;

/** One page of the organization's payments, newest first; polled while one is still pending. */
export function usePaymentsQuery(org: string, pageToken: string, pollMs: number | false = false) {
  return useQuery({
    queryKey: keys.payments(org, pageToken),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/orgs/{orgId}/payments', {
          params: { path: { orgId: org }, query: { pageSize: PAYMENTS_PAGE_SIZE, pageToken } },
          signal,
        }),
      ),
    enabled: org !== '',
    placeholderData: keepPreviousData,
    refetchInterval: pollMs,
  });
}
