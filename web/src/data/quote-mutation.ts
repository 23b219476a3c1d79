import { useMutation } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import type { QuoteRequest } from '../api/types';

/** Prices a usage of a model with the public price list. */
export function useQuoteMutation() {
  return useMutation({
    mutationFn: (body: QuoteRequest) => unwrap(api.POST('/v1/pricing/quote', { body })),
  });
}
