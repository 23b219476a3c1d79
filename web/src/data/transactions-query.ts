import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

export const TRANSACTIONS_PAGE_SIZE = 25;

/** One page of the organization's transactions (credits, debits, expiry, adjustments), newest first. */
export function useTransactionsQuery(org: string, pageToken: string) {
  return useQuery({
    queryKey: keys.transactions(org, pageToken),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/orgs/{orgId}/transactions', {
          params: { path: { orgId: org }, query: { pageSize: TRANSACTIONS_PAGE_SIZE, pageToken } },
          signal,
        }),
      ),
    enabled: org !== '',
    placeholderData: keepPreviousData,
  });
}
