import { useMutation, useQueryClient } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

export function useReviewItemResolveMutation() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ id, resolution }: { id: string; resolution: string }) =>
      unwrap(
        api.POST('/v1/payment-review-items/{reviewItemId}/resolve', {
          params: { path: { reviewItemId: id } },
          body: { resolution },
        }),
      ),
    onSuccess: () => qc.invalidateQueries({ queryKey: keys.reviewItemsAll }),
  });
}
