import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { RefundRequest } from '../api/types';

/** Refunds (part of) a payment; idempotent per key, may come back pending. */
export function useRefundMutation() {
  return useMutation({
    mutationFn: ({ paymentId, body }: { paymentId: string; body: RefundRequest }) =>
      unwrap(api.POST('/v1/payments/{paymentId}/refunds', { params: { path: { paymentId } }, body })),
  });
}
