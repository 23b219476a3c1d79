import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../api/client';
import { keys } from './keys';

/** The hourly price of every instance type now, and the versions scheduled after now. */
export function useInstancePricesQuery() {
  return useQuery({
    queryKey: keys.instancePrices,
    queryFn: ({ signal }) => unwrap(api.GET('/v1/pricing/instances', { signal })),
    staleTime: 60_000,
  });
}
