import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { PaymentsResponse } from '../api/types';
import { keys } from './keys';

/** How often to refetch a page, from its last answer (false: not at all). */
export type PaymentsPoll = (data: PaymentsResponse | undefined) => number | false;

export const PAYMENTS_PAGE_SIZE = 20;

/** One page of the organization's payments, newest first; polled as poll says. */
export function usePaymentsQuery(org: string, pageToken: string, poll?: PaymentsPoll) {
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
    refetchInterval: poll ? (query) => poll(query.state.data) : false,
  });
}
