import { QueryClient } from '@tanstack/react-query';
import { Navigate, Route, Routes } from 'react-router';
import { ApiError } from './api/errors';
import { SessionProvider } from './auth/session';
import { Layout } from './components/Layout';
import { AddCreditsProvider } from './components/AddCreditsDialog';
import { BillingPage } from './pages/BillingPage';
import { UsagePage } from './pages/UsagePage';
import { InstancesPage } from './pages/InstancesPage';
import { PricingPage } from './pages/PricingPage';
import { NotificationsPage } from './pages/NotificationsPage';
import { OpsPage } from './pages/OpsPage';
import { NotFoundPage } from './pages/NotFoundPage';

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // 4xx answers are final; retry network trouble and 5xx twice.
        retry: (count, err) => !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 2,
        staleTime: 10_000,
      },
    },
  });
}

export function App() {
  return (
    <SessionProvider>
      <AddCreditsProvider>
        <Routes>
          <Route element={<Layout />}>
            <Route index element={<Navigate to="/usage" replace />} />
            <Route path="usage" element={<UsagePage />} />
            <Route path="instances" element={<InstancesPage />} />
            <Route path="billing" element={<BillingPage />} />
            <Route path="pricing" element={<PricingPage />} />
            <Route path="settings" element={<Navigate to="/settings/notifications" replace />} />
            <Route path="settings/notifications" element={<NotificationsPage />} />
            <Route path="ops" element={<OpsPage />} />
            <Route path="*" element={<NotFoundPage />} />
          </Route>
        </Routes>
      </AddCreditsProvider>
    </SessionProvider>
  );
}
