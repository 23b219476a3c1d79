import { createContext, useContext, useEffect, type ReactNode } from 'react';
import { useQuery } from '@tanstack/react-query';
import { fetchMe, type Me } from './me';
import { ApiError } from '../api/errors';
import { setCsrfToken } from '../api/client';
import { redirectToLogin } from '../nav';
import { keys } from '../data/keys';
import { ErrorState, LoadingState } from '../components/states';

const SessionContext = createContext<Me | null>(null);

/** Loads /auth/me; without a session it sends the browser to the sign-in page and back here. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const me = useQuery({ queryKey: keys.me, queryFn: fetchMe, retry: false, staleTime: 60_000 });
  const unauthenticated = me.error instanceof ApiError && me.error.status === 401;

  useEffect(() => {
    if (unauthenticated) redirectToLogin();
  }, [unauthenticated]);
  useEffect(() => {
    if (me.data) setCsrfToken(me.data.csrfToken);
  }, [me.data]);

  if (me.isPending || unauthenticated) return <LoadingState label="Signing in…" />;
  if (me.error) {
    return (
      <main id="main" className="page">
        <h1>tally</h1>
        <ErrorState error={me.error} onRetry={() => void me.refetch()} />
      </main>
    );
  }
  setCsrfToken(me.data.csrfToken);
  return <SessionContext.Provider value={me.data}>{children}</SessionContext.Provider>;
}

export function useMe(): Me {
  const me = useContext(SessionContext);
  if (!me) throw new Error('useMe outside SessionProvider');
  return me;
}
