// Query keys, one place: a mutation invalidates by these.
export const keys = {
  me: ['me'] as const,
  balance: (org: string) => ['orgs', org, 'balance'] as const,
  checkoutOptions: (org: string) => ['orgs', org, 'checkout-options'] as const,
  payments: (org: string, page: string) => ['orgs', org, 'payments', page] as const,
  paymentsAll: (org: string) => ['orgs', org, 'payments'] as const,
  payment: (org: string, id: string) => ['orgs', org, 'payment', id] as const,
  billingProfile: (org: string) => ['orgs', org, 'billing-profile'] as const,
  usageSummary: (org: string, days: number) => ['orgs', org, 'usage-summary', days] as const,
  transactions: (org: string, page: string) => ['orgs', org, 'transactions', page] as const,
  rentals: (org: string, page: string) => ['orgs', org, 'rentals', page] as const,
  notificationSettings: (org: string) => ['orgs', org, 'notification-settings', 'me'] as const,
  modelPrices: ['pricing', 'models'] as const,
  instancePrices: ['pricing', 'instances'] as const,
  reviewItems: (includeResolved: boolean, page: string) => ['ops', 'review-items', includeResolved, page] as const,
  reviewItemsAll: ['ops', 'review-items'] as const,
  deliveries: (status: string, page: string) => ['ops', 'deliveries', status, page] as const,
};
