import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

export function useReviewItemsQuery(includeResolved: boolean, pageToken: string) {
  return useQuery({
    queryKey: keys.reviewItems(includeResolved, pageToken),
    queryFn: ({ signal }) =>
      unwrap(
        api.GET('/v1/payment-review-items', {
          params: { query: { includeResolved, pageToken, pageSize: 50 } },
          signal,
        }),
      ),
    placeholderData: keepPreviousData,
  });
}
