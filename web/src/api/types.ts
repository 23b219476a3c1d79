// Names for the generated response types. Nothing is hand-typed: each alias is read from
// schema.d.ts by route and method, so it follows the OpenAPI document whatever its schema names.
import type { paths } from './schema';

type JsonOf<R> = R extends { content: { 'application/json': infer J } } ? J : never;
type Ok<Op> = Op extends { responses: infer Rs } ? (200 extends keyof Rs ? JsonOf<Rs[200]> : never) : never;
type Body<Op> = Op extends { requestBody?: infer B } ? JsonOf<NonNullable<B>> : never;

export type ResponseOf<P extends keyof paths, M extends keyof paths[P]> = Ok<paths[P][M]>;
export type RequestBodyOf<P extends keyof paths, M extends keyof paths[P]> = Body<paths[P][M]>;

export type BalanceResponse = ResponseOf<'/v1/orgs/{orgId}/balance', 'get'>;
export type PaymentsResponse = ResponseOf<'/v1/orgs/{orgId}/payments', 'get'>;
export type Payment = NonNullable<PaymentsResponse['payments']>[number];
export type PaymentResponse = ResponseOf<'/v1/orgs/{orgId}/payments/{paymentId}', 'get'>;
export type Refund = NonNullable<PaymentResponse['refunds']>[number];
export type BillingProfileResponse = ResponseOf<'/v1/orgs/{orgId}/billing-profile', 'get'>;
export type BillingProfile = NonNullable<BillingProfileResponse['profile']>;
export type AutoRechargeResponse = ResponseOf<'/v1/orgs/{orgId}/auto-recharge', 'get'>;
export type AutoRechargeRule = NonNullable<AutoRechargeResponse['rule']>;
export type SavedPaymentMethod = NonNullable<AutoRechargeResponse['paymentMethod']>;
export type TransactionsResponse = ResponseOf<'/v1/orgs/{orgId}/transactions', 'get'>;
export type Transaction = NonNullable<TransactionsResponse['transactions']>[number];
export type RentalsResponse = ResponseOf<'/v1/orgs/{orgId}/rentals', 'get'>;
export type Rental = NonNullable<RentalsResponse['rentals']>[number];
export type InstancePricesResponse = ResponseOf<'/v1/pricing/instances', 'get'>;
export type InstancePrice = NonNullable<InstancePricesResponse['instances']>[number];
export type ModelPricesResponse = ResponseOf<'/v1/pricing/models', 'get'>;
export type ModelPrice = NonNullable<ModelPricesResponse['models']>[number];
export type QuoteRequest = RequestBodyOf<'/v1/pricing/quote', 'post'>;
export type QuoteResponse = ResponseOf<'/v1/pricing/quote', 'post'>;
export type NotificationSettingsResponse = ResponseOf<
  '/v1/orgs/{orgId}/members/{memberId}/notification-settings',
  'get'
>;
export type NotificationSettings = NonNullable<NotificationSettingsResponse['settings']>;
export type ReviewItemsResponse = ResponseOf<'/v1/payment-review-items', 'get'>;
export type ReviewItem = NonNullable<ReviewItemsResponse['items']>[number];
export type DeliveriesResponse = ResponseOf<'/v1/notifications/deliveries', 'get'>;
export type Delivery = NonNullable<DeliveriesResponse['deliveries']>[number];
export type CreditRequest = RequestBodyOf<'/v1/orgs/{orgId}/credits', 'post'>;
export type AdjustRequest = RequestBodyOf<'/v1/orgs/{orgId}/adjustments', 'post'>;
export type RefundRequest = RequestBodyOf<'/v1/payments/{paymentId}/refunds', 'post'>;
export type RefundResponse = ResponseOf<'/v1/payments/{paymentId}/refunds', 'post'>;
export type SpendLimitResponse = ResponseOf<'/v1/orgs/{orgId}/spend-limit', 'get'>;
export type SpendLimitStatus = NonNullable<SpendLimitResponse['spendLimit']>;
export type SpendLimitRequest = RequestBodyOf<'/v1/orgs/{orgId}/spend-limit', 'put'>;
export type ProjectLimitsResponse = ResponseOf<'/v1/orgs/{orgId}/project-limits', 'get'>;
export type ProjectLimitStatus = NonNullable<ProjectLimitsResponse['projectLimits']>[number];
export type ProjectLimitRequest = RequestBodyOf<'/v1/orgs/{orgId}/project-limits/{project}', 'put'>;
