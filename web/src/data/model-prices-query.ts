import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** The public price of every model now, and the versions scheduled after now. */
export function useModelPricesQuery() {
  return useQuery({
    queryKey: keys.modelPrices,
    queryFn: ({ signal }) => unwrap(api.GET('/v1/pricing/models', { signal })),
    staleTime: 60_000,
  });
}
