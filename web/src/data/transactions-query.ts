import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { paths } from '../api/schema';
import { keys } from './keys';

export const TRANSACTIONS_PAGE_SIZE = 25;

type Query = NonNullable<paths['/v1/orgs/{orgId}/transactions']['get']['parameters']['query']>;
export type TransactionKindFilter = NonNullable<Query['kind']> | '';

/** One page of the organization's transactions (credits, debits, expiry, adjustments), newest first. */
export function useTransactionsQuery(org: string, pageToken: string, kind: TransactionKindFilter = '') {
  return useQuery({
    queryKey: keys.transactions(org, `${kind}:${pageToken}`),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/orgs/{orgId}/transactions', {
          params: {
            path: { orgId: org },
            query: { pageSize: TRANSACTIONS_PAGE_SIZE, pageToken, ...(kind !== '' ? { kind } : {}) },
          },
          signal,
        }),
      ),
    enabled: org !== '',
    placeholderData: keepPreviousData,
  });
}
